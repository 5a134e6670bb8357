"""Every Python snippet of README.md runs as written, on its own, as a script in an empty
directory (so ``if __name__ == "__main__":`` guards and relative paths behave as for a user)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_snippets() -> None:
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("i", range(len(SNIPPETS)))
def test_snippet_runs(i: int, tmp_path: Path) -> None:
    script = tmp_path / f"snippet_{i}.py"
    script.write_text(SNIPPETS[i])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, f"snippet {i} failed:\n{SNIPPETS[i]}\n{proc.stderr[-3000:]}"
