"""The ``nn2mip`` command. Each subcommand lives in its own module in this package (``nn2mip.cli``)
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
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from nn2mip.errors import Nn2mipError

# Subcommands, in the order ``nn2mip --help`` lists them: name -> (module, one-line help). The
# help is here too so that ``nn2mip --help`` lists every command without importing any (they
# pull in torch and the solvers, seconds of start-up); a test checks it matches the module's.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("nn2mip.cli.demo", "train a dense and a pruned net, attack both, compare"),
    "encode": ("nn2mip.cli.encode", "encode a model over an input ball; print its size"),
    "train": ("nn2mip.cli.train", "train a ReLU MLP (with L1/group-lasso/SPR/stability)"),
    "prune": ("nn2mip.cli.prune", "prune a model with a catalogue method and compact it"),
    "attack": (
        "nn2mip.cli.attack",
        "batch adversarial search (PGD, then MIP) into an SQLite results file",
    ),
    "report": ("nn2mip.cli.report", "summarize an attack results file (CSV, Markdown, plots)"),
    "verify": (
        "nn2mip.cli.verify",
        "check a VNN-LIB property on a network (VNN-COMP style)",
    ),
    "optimize": (
        "nn2mip.cli.optimize",
        "optimize a linear objective over a model's inputs and outputs",
    ),
}

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
        return _version("nn2mip")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, just that subcommand is built for real and the others are
    listed by name and help (what ``main`` does: one command's imports, not all of them)."""
    parser = OneLineParser(
        prog="nn2mip",
        description="Prune ReLU networks, encode them as big-M MIPs, solve them with HiGHS.",
    )
    parser.add_argument("--version", action="version", version=f"nn2mip {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)  # listed in --help; never run
            continue
        module = importlib.import_module(module_name)
        p = module.add_parser(sub)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors and a non-zero exit for every user mistake."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # The first word that is not an option names the command; "" builds none (--help, --version).
    command = next((a for a in argv if not a.startswith("-")), "")
    parser = build_parser(command if command in COMMANDS else "")
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
