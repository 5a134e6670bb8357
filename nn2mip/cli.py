"""The ``nn2mip`` command. Each subcommand lives in its own module under ``nn2mip.commands``
with ``add_parser(subparsers)`` and ``run(args) -> int``; this file only wires them up.

Every user mistake ends as one line on stderr (``nn2mip: error: ...``) and a non-zero exit:
argument errors exit 2 before anything runs, and the commands check their files and output
places before any work starts.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from nn2mip.errors import Nn2mipError

# Subcommand modules, in the order ``nn2mip --help`` lists them.
COMMANDS = [
    "nn2mip.commands.demo",
    "nn2mip.commands.encode",
    "nn2mip.commands.train",
    "nn2mip.commands.prune",
    "nn2mip.commands.attack",
    "nn2mip.commands.report",
    "nn2mip.commands.verify",
    "nn2mip.commands.optimize",
]

# Set to see the traceback of an unexpected error instead of its one-line summary.
DEBUG_ENV = "NN2MIP_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block) and whose help shows
    every default; subparsers inherit both."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"nn2mip: error: {one_line(message)} (see '{self.prog} --help')\n")


def one_line(text: object) -> str:
    """``text`` with its line breaks folded, so an error is always exactly one line."""
    return " ".join(str(text).split())


def version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as _version

        return _version("nn2mip")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="nn2mip",
        description="Prune ReLU networks, encode them as big-M MIPs, solve them with HiGHS.",
    )
    parser.add_argument("--version", action="version", version=f"nn2mip {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(name)
        p = module.add_parser(sub)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors and a non-zero exit for every user mistake."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line argument error
        return done.code if isinstance(done.code, int) else 2
    try:
        return int(args._run(args) or 0)
    except Nn2mipError as err:
        return _fail(str(err))
    except (ValueError, OSError) as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        print("nn2mip: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _fail("out of memory (a smaller network, data set or batch may fit)")
    except RuntimeError as err:
        if "allocate memory" not in str(err):  # torch reports failed allocations this way
            return _internal(err)
        return _fail(f"out of memory: {err} (a smaller network, data set or batch may fit)")
    except Exception as err:
        return _internal(err)


def _internal(err: Exception) -> int:
    if os.environ.get(DEBUG_ENV):
        raise err
    return _fail(
        f"internal error: {type(err).__name__}: {err} (a bug in nn2mip; rerun with "
        f"{DEBUG_ENV}=1 for the traceback and report it)",
        code=3,
    )


def _fail(message: str, code: int = 2) -> int:
    print(f"nn2mip: error: {one_line(message)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
