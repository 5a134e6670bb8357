"""The ``nn2mip`` command. Each subcommand lives in its own module under ``nn2mip.commands``
with ``add_parser(subparsers)`` and ``run(args) -> int``; this file only wires them up."""

from __future__ import annotations

import argparse
import importlib
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nn2mip",
        description="Prune ReLU networks, encode them as big-M MIPs, solve them with HiGHS.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(name)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors and a non-zero exit for every user mistake."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except Nn2mipError as err:
        print(f"nn2mip: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as err:
        print(f"nn2mip: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nn2mip: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
