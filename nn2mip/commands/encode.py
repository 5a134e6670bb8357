"""``nn2mip encode``: a saved model + an input + eps -> formulation size, optionally MPS/LP."""

from __future__ import annotations

import argparse

import numpy as np

from nn2mip.commands.common import load_point, nonneg_float, print_json
from nn2mip.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("encode", help="encode a model over an input ball; print its size")
    p.add_argument("model", help="model file (.safetensors written by nn2mip, or .onnx)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="input point: .npy or text file of numbers")
    src.add_argument("--index", type=int, help="index of a test image of --data")
    p.add_argument("--data", default="digits", help="data set for --index (digits, mnist)")
    p.add_argument("--data-dir", default=None, help="directory of MNIST IDX files")
    p.add_argument("--eps", type=nonneg_float, required=True, help="ball radius")
    p.add_argument("--norm", choices=["inf", "1"], default="inf")
    p.add_argument("--domain", type=float, nargs=2, default=(0.0, 1.0), metavar=("LO", "HI"))
    p.add_argument(
        "--bounds", default="symbolic", help="interval, symbolic (default), alpha, lp or mip"
    )
    p.add_argument("--label", type=int, default=None, help="true class (objective label)")
    p.add_argument(
        "--target", type=int, default=None, help="objective: maximize y[target] - y[label]"
    )
    p.add_argument("--out", default=None, help="write the MIP here (.mps or .lp)")
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from nn2mip.datasets import load_dataset
    from nn2mip.formulation import build_formulation
    from nn2mip.highs_backend import write_model
    from nn2mip.region import ball_region
    from nn2mip.serialize import load_network

    net = load_network(args.model)
    label = args.label
    if args.input is not None:
        x = load_point(args.input)
    else:
        data = load_dataset(args.data, args.data_dir)
        if not 0 <= args.index < len(data.y_test):
            raise InvalidInputError(
                f"--index {args.index} is out of range: the test set has {len(data.y_test)} images"
            )
        x = data.x_test[args.index]
        label = int(data.y_test[args.index]) if label is None else label
    x = net.check_input(x)[0]
    region = ball_region(x, args.eps, args.norm, tuple(args.domain))
    form = build_formulation(net, region, bound_method=args.bounds)
    if args.target is not None:
        if label is None:
            raise InvalidInputError("--target needs --label (or --index, which knows the label)")
        for c in (label, args.target):
            if not 0 <= c < net.output_size:
                raise InvalidInputError(f"class {c} is out of range 0..{net.output_size - 1}")
        out = form.output_cols
        form.model.set_objective(np.array([out[args.target], out[label]]), np.array([1.0, -1.0]))
    stats = form.stats().as_dict()
    info = {
        "model": args.model,
        "shape": net.describe(),
        "eps": args.eps,
        "norm": args.norm,
        "bounds": args.bounds,
        "bounds_time": form.bounds_time,
        "build_time": form.build_time,
        **stats,
    }
    if args.out:
        info["out"] = str(write_model(form.model, args.out))
    if args.json:
        print_json(info)
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            v = f"{v:.4f}" if isinstance(v, float) else v
            print(f"{k.ljust(width)}  {v}")
    return 0
