"""``nn2mip encode``: a saved model + an input + eps -> formulation size, optionally MPS/LP."""

from __future__ import annotations

import argparse

import numpy as np

from nn2mip.bounds_base import DEFAULT_BOUND_METHOD
from nn2mip.cli.common import (
    DATASETS,
    Progress,
    check_bounds,
    check_data,
    check_model_file,
    check_output_file,
    load_point,
    nonneg_float,
    nonneg_int,
    print_json,
)
from nn2mip.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "encode",
        help="encode a model over an input ball; print its size",
        description="Encode MODEL as a big-M MIP over the --norm ball of radius --eps around an "
        "input, print the formulation's size, and optionally write it as MPS or LP with named "
        "columns (x_i inputs, z_k_j / a_k_j neuron j of layer k and its binary, y_j outputs, "
        "t_i L1 distances) and, with --target, the objective y[target] - y[label].",
    )
    p.add_argument("model", help="model file (.safetensors written by nn2mip, or .onnx)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="input point: .npy or text file of numbers")
    src.add_argument("--index", type=nonneg_int, help="index of a test image of --data")
    p.add_argument("--data", choices=DATASETS, default="digits", help="data set for --index")
    p.add_argument(
        "--data-dir", default=None, help="directory of MNIST IDX files (default: searched)"
    )
    p.add_argument("--eps", type=nonneg_float, required=True, help="ball radius")
    p.add_argument("--norm", choices=["inf", "1"], default="inf", help="ball norm")
    p.add_argument(
        "--domain",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("LO", "HI"),
        help="input domain box the ball is clipped to",
    )
    p.add_argument(
        "--bounds", default=DEFAULT_BOUND_METHOD, help="interval, symbolic, alpha, lp or mip"
    )
    p.add_argument("--label", type=nonneg_int, default=None, help="true class (objective label)")
    p.add_argument(
        "--target",
        type=nonneg_int,
        default=None,
        help="objective: maximize y[target] - y[label] (needs --label or --index)",
    )
    p.add_argument("--out", default=None, help="write the MIP here (.mps or .lp)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    # Everything checkable is checked before bounds are computed.
    check_model_file(args.model)
    if args.out:
        check_output_file(args.out, "--out", suffixes=(".mps", ".lp"))
    check_bounds(args.bounds)
    lo, hi = args.domain
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise InvalidInputError(f"--domain needs finite LO <= HI, got {lo} {hi}")
    if args.index is None and args.data_dir is not None:
        raise InvalidInputError("--data-dir is only used with --index")
    data_dir = check_data(args.data, args.data_dir) if args.index is not None else None
    if args.target is not None and args.label is None and args.index is None:
        raise InvalidInputError("--target needs --label (or --index, which knows the label)")
    if args.target is not None and args.target == args.label:
        raise InvalidInputError(
            f"--target {args.target} equals --label: the objective y{args.target} - "
            f"y{args.label} would be 0"
        )

    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.datasets import load_dataset
    from nn2mip.formulation import build_formulation
    from nn2mip.highs_backend import write_model
    from nn2mip.region import ball_region
    from nn2mip.serialize import load_network

    say = Progress(args.quiet or args.json)
    net = load_network(args.model)
    label = args.label
    if args.input is not None:
        x = load_point(args.input)
    else:
        data = load_dataset(args.data, data_dir)
        if not args.index < len(data.y_test):
            raise InvalidInputError(
                f"--index {args.index} is out of range: the test set has {len(data.y_test)} images"
            )
        x = data.x_test[args.index]
        label = int(data.y_test[args.index]) if label is None else label
    x = net.check_input(x)[0]
    if np.any(x < lo) or np.any(x > hi):
        raise InvalidInputError(f"the input point lies outside --domain {lo} {hi}")
    for c, opt in ((label, "--label"), (args.target, "--target")):
        if c is not None and not c < net.output_size:
            raise InvalidInputError(
                f"{opt} {c} is out of range: the model has classes 0..{net.output_size - 1}"
            )
    if args.target is not None and args.target == label:
        raise InvalidInputError(
            f"--target {args.target} is the input's label: the objective would be 0"
        )
    region = ball_region(x, args.eps, args.norm, (lo, hi))
    say(f"bounds ({args.bounds}) and big-M formulation of {net.describe()}")
    form = build_formulation(net, region, bound_method=args.bounds)
    if args.target is not None:
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
    if args.target is not None:
        info["objective"] = f"max y_{args.target} - y_{label}"
    if args.out:
        name_formulation_columns(form)
        info["out"] = str(write_model(form.model, args.out))
    if args.json:
        print_json(info)
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            v = f"{v:.4f}" if isinstance(v, float) else v
            print(f"{k.ljust(width)}  {v}")
    return 0


def name_formulation_columns(form: object) -> None:
    """Name the columns of ``form.model`` so an MPS/LP file reads well in another solver:
    ``x_i`` inputs, ``t_i`` L1 distances, ``z_k_j`` neuron j of layer k (1-based; the last
    layer's are ``y_j``) and ``a_k_j`` its binary; anything else keeps a ``c_n`` name."""
    enc = form.encoding  # type: ignore[attr-defined]
    model = form.model  # type: ignore[attr-defined]
    names = {int(c): f"x_{i}" for i, c in enumerate(enc.input_cols)}
    first = int(enc.input_cols.max()) + 1 if enc.input_cols.size else 0
    region = form.region  # type: ignore[attr-defined]
    if region.norm == "1" and region.center is not None:
        # add_region puts the L1 distance columns right after the inputs
        for i in range(region.size):
            names.setdefault(first + i, f"t_{i}")
    n_layers = len(enc.layer_cols)
    for k, (cols, bins) in enumerate(zip(enc.layer_cols, enc.binary_cols, strict=True), start=1):
        for j, c in enumerate(cols.tolist()):
            if c >= 0:
                names.setdefault(c, f"y_{j}" if k == n_layers else f"z_{k}_{j}")
        for j, b in enumerate(bins.tolist()):
            if b >= 0:
                names.setdefault(b, f"a_{k}_{j}")
    model.set_col_names(names)
