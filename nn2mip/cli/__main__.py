"""``python -m nn2mip.cli``: the ``nn2mip`` command without the console script."""

import sys

from nn2mip.cli import main

sys.exit(main())
