"""``nn2mip verify NET.onnx PROP.vnnlib --timeout S``: check a VNN-LIB property, VNN-COMP style.

Prints ``sat``/``unsat``/``timeout``/``unknown`` on the first line (then, for sat, the
counterexample) and writes the same text to ``--out`` in the competition's result format; with
``--out`` only the verdict line is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adversarial.methods import METHODS
from nn2mip.cli.common import (
    Progress,
    check_bounds,
    check_input_file,
    check_model_file,
    check_output_file,
    positive_float,
    positive_int,
    print_json,
)
from nn2mip.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("verify", help="check a VNN-LIB property on a network (VNN-COMP style)")
    p.add_argument("network", help="network file (.onnx, or .safetensors written by nn2mip)")
    p.add_argument("property", help="VNN-LIB property (.vnnlib or .vnnlib.gz)")
    p.add_argument(
        "--timeout",
        "--time-limit",
        dest="timeout",
        type=positive_float,
        required=True,
        help="seconds in total (--timeout as VNN-COMP names it)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="write the result (and counterexample) here; only the verdict is then printed",
    )
    p.add_argument("--threads", type=positive_int, default=1, help="HiGHS and torch threads")
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


def run(args: argparse.Namespace) -> int:
    # Files and the output place first: nothing is loaded or solved before they are known good.
    check_model_file(args.network, "network file")
    check_input_file(args.property, "property file")
    if args.out:
        check_output_file(args.out, "--out")
        if Path(args.out).resolve() in (
            Path(args.network).resolve(),
            Path(args.property).resolve(),
        ):
            raise InvalidInputError(f"--out {args.out} would overwrite an input file")
    check_bounds(args.bounds)

    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from adversarial.vnnlib_problem import verify_property
    from nn2mip.serialize import load_network
    from nn2mip.vnnlib import load_vnnlib, result_text

    say = Progress(args.quiet or args.json)
    net = load_network(args.network)
    prop = load_vnnlib(args.property)
    for what, n_prop, n_net in (
        ("inputs X_i", prop.num_inputs, net.input_size),
        ("outputs Y_j", prop.num_outputs, net.output_size),
    ):
        if n_prop != n_net:
            raise InvalidInputError(
                f"{args.property} declares {n_prop} {what} but the network has {n_net}"
            )
    say(
        f"verifying {Path(args.property).name} on {net.describe()} ({args.timeout:g} s: "
        f"{'' if args.no_attack else 'centers and PGD, '}bounds, then {args.method})"
    )
    kwargs = {"attack": None} if args.no_attack else {}
    res = verify_property(
        net,
        prop,
        args.timeout,
        threads=args.threads,
        bound_method=args.bounds,
        method=args.method,
        progress=say,
        **kwargs,
    )
    text = result_text(res.result, res.x, res.y)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    if args.json:
        print_json(res.as_dict())
    else:
        # The counterexample can run to hundreds of lines: with --out it is only in the file.
        sys.stdout.write(text.splitlines(keepends=True)[0] if args.out else text)
        detail = (
            f"{res.decided_by or 'undecided'}, {res.total_time:.2f} s, bounds {res.bound_method}"
        )
        if res.note:
            detail += f"; {res.note}"
        if args.out:
            detail += f"; written to {args.out}"
        if not args.quiet:
            print(f"nn2mip: {res.result} ({detail})", file=sys.stderr)
    return 0
