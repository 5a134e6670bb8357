"""``nn2mip verify NET.onnx PROP.vnnlib --timeout S``: check a VNN-LIB property, VNN-COMP style.

Prints ``sat``/``unsat``/``timeout``/``unknown`` on the first line (then, for sat, the
counterexample) and writes the same text to ``--out`` in the competition's result format.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adversarial.methods import METHODS
from nn2mip.commands.common import positive_float, print_json


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("verify", help="check a VNN-LIB property on a network (VNN-COMP style)")
    p.add_argument("network", help="network file (.onnx, or .safetensors written by nn2mip)")
    p.add_argument("property", help="VNN-LIB property (.vnnlib or .vnnlib.gz)")
    p.add_argument("--timeout", type=positive_float, required=True, help="seconds in total")
    p.add_argument("--out", default=None, help="write the result (and counterexample) here")
    p.add_argument("--threads", type=int, default=1, help="HiGHS and torch threads")
    p.add_argument(
        "--bounds",
        default=None,
        help="bound method (default: the tightest available, lp); alpha, lp and mip spend at "
        "most half the time left",
    )
    p.add_argument("--no-attack", action="store_true", help="skip the PGD attack")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="auto",
        help="what settles the disjuncts the bounds leave open: branch and bound, then MIPs "
        "(auto), branch and bound only, or one HiGHS MIP per disjunct",
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    return p


def format_result(result: object) -> str:
    """VNN-COMP result text: the verdict line, then for sat ``((X_0 v)\n...\n(Y_j v))``."""
    from nn2mip.vnnlib import result_text

    return result_text(result.result, result.x, result.y)  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    from adversarial.vnnlib_problem import verify_property
    from nn2mip.bounds import bound_methods
    from nn2mip.errors import InvalidInputError
    from nn2mip.serialize import load_network
    from nn2mip.vnnlib import load_vnnlib

    if args.threads < 1:
        raise InvalidInputError(f"--threads must be at least 1, got {args.threads}")
    if args.bounds is not None and args.bounds not in bound_methods():
        raise InvalidInputError(
            f"unknown bound method {args.bounds!r}; choose from {', '.join(bound_methods())}"
        )
    net = load_network(args.network)
    prop = load_vnnlib(args.property)
    kwargs = {"attack": None} if args.no_attack else {}
    res = verify_property(
        net,
        prop,
        args.timeout,
        threads=args.threads,
        bound_method=args.bounds,
        method=args.method,
        **kwargs,
    )
    text = format_result(res)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    if args.json:
        print_json(res.as_dict())
    else:
        sys.stdout.write(text)
        detail = (
            f"{res.decided_by or 'undecided'}, {res.total_time:.2f} s, bounds {res.bound_method}"
        )
        if res.note:
            detail += f"; {res.note}"
        print(f"nn2mip: {res.result} ({detail})", file=sys.stderr)
    return 0
