"""Seed experiment: unstable neurons (MIP binaries) and bound time, symbolic vs alpha bounds.

Bounds only, no MIP: for the cached dense and chosen "best" nets (``--nets ARCH=TAG``; by
default the 2x50, 2x100 and 2x200 nets of the seed table), the median over the L1 balls of
radius 5 (within [0, 1]) around the first ``--images`` MNIST test images of the unstable hidden
neurons (total and per layer) and of the bound time.

    PYTHONPATH=. python benchmarks/seed_bounds_compare.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.seed_experiment import (  # noqa: E402
    MNIST,
    dense_path,
    load_data,
    pruned_path,
    unstable_profile,
)
from nn2mip.serialize import load_network  # noqa: E402

# The "best" configurations of the seed table when ``--nets`` is not given.
CHOSEN = {
    "2x50": "n0.3_w0.7_rs0.2_ft20d",
    "2x100": "n0.2_w0.5_rs0.3_ft10d_lr0.02",
    "2x200": "n0.5_w0.7_rs0.1_ft10d_lr0.02_sym8",
}


def main() -> None:
    """Print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--methods", nargs=2, default=["symbolic", "alpha"])
    ap.add_argument(
        "--nets",
        nargs="+",
        metavar="ARCH=TAG",
        help="the 'best' nets to compare with their dense nets (grid tags as in the cache names)",
    )
    args = ap.parse_args()
    chosen = dict(CHOSEN)
    if args.nets:
        if not all("=" in item for item in args.nets):
            raise SystemExit("--nets takes ARCH=TAG items, e.g. 2x200=n0.5_w0.7_rs0.2_ft10d_lr0.02")
        chosen = dict(item.split("=", 1) for item in args.nets)
    torch.set_num_threads(1)
    xs = load_data(MNIST)[2][: args.images]
    a, b = args.methods
    print(
        f"| arch | net | {a} unstable: median (per layer) | {b} unstable: median (per layer) "
        f"| median bound time s, {a} / {b} |\n|---|---|---|---|---|"
    )
    for arch, tag in chosen.items():
        nets = {"dense": dense_path(arch, 50, 0), "best": pruned_path(arch, "best", tag, 50, 0)}
        for name, path in nets.items():
            if not path.is_file():
                continue
            net = load_network(path)
            cells = []
            for method in (a, b):
                c, times = unstable_profile(net, xs, method)
                per = ", ".join(f"{np.median(c[:, k]):g}" for k in range(c.shape[1]))
                cells.append((f"{np.median(c.sum(1)):g} ({per})", float(np.median(times))))
            print(
                f"| {arch} | {name} | {cells[0][0]} | {cells[1][0]} | "
                f"{cells[0][1]:.2f} / {cells[1][1]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
