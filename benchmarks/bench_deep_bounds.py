"""Root bounds on the VNN-COMP mnist_fc nets: symbolic vs alpha-CROWN vs LP vs MIP, side by side.

For the first ``--instances`` eps-0.05 properties of each network that hold officially (their
first input box):
time to compute the bounds, unstable neurons left (all layers), and the lower bound branch and
bound reaches in ``--bab`` seconds from them (the worst open disjunct; > 0 proves the property).
"lp (old)" is the LP pass from symbolic bounds as verify used it until 2026-11-29, "lp" the
current one, which starts from alpha-CROWN's bounds; "mip" tightens LP's bounds by a MIP per
unstable neuron (``MIP_BUDGET`` s in all, including its LP start, at most 1 s per neuron and
side). Writes a section of BENCHMARKS.md.

    PYTHONPATH=. python benchmarks/bench_deep_bounds.py [--instances 3] [--bab 10]
"""

from __future__ import annotations

import argparse
import csv
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adversarial.bab import bab_verify  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from nn2mip.bounds_lp import lp_bounds, mip_bounds  # noqa: E402
from nn2mip.crown import alpha_bounds  # noqa: E402
from nn2mip.crown import crown_bounds as symbolic_bounds  # noqa: E402
from nn2mip.onnx_io import load_onnx  # noqa: E402
from nn2mip.region import box_region  # noqa: E402
from nn2mip.vnnlib import load_vnnlib  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "vnncomp_mnist_fc"
LP_BUDGET = 20.0  # what verify gives the LP pass
MIP_BUDGET = 60.0  # mip_bounds' default
METHODS = {
    "symbolic": lambda net, reg: symbolic_bounds(net, reg),
    "alpha": lambda net, reg: alpha_bounds(net, reg),
    "lp (old)": lambda net, reg: lp_bounds(net, reg, LP_BUDGET, start=symbolic_bounds(net, reg)),
    "lp": lambda net, reg: lp_bounds(net, reg, LP_BUDGET),
    "mip": lambda net, reg: mip_bounds(net, reg, MIP_BUDGET, neuron_time=1.0),
}


def _unsat_props(net_name: str) -> list[int]:
    """Indices of the eps-0.05 properties whose official result is unsat, in order."""
    with open(DATA / "summary" / "mnist_fc_vnncomp2022_summary.csv") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        name = r["vnnlib"].removesuffix(".vnnlib")
        if r["network"].endswith(net_name) and name.endswith("_0.05"):
            if r["official_true_result"] == "unsat":
                out.append(int(name.split("_")[1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--bab", type=float, default=10.0, help="seconds of branch and bound")
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for net_name in ("256x2", "256x4", "256x6"):
        net = load_onnx(DATA / "onnx" / f"mnist-net_{net_name}.onnx")
        per: dict[str, list[tuple[float, int, float]]] = {m: [] for m in METHODS}
        for i in _unsat_props(net_name)[: args.instances]:
            prop = load_vnnlib(DATA / "vnncomp2022" / "vnnlib" / f"prop_{i}_0.05.vnnlib")
            case = prop.cases[0]
            region = box_region(case.lower, case.upper)
            for name, fn in METHODS.items():
                t0 = time.perf_counter()
                b = fn(net, region)
                t = time.perf_counter() - t0
                unstable = sum(b.unstable_counts(net))
                res = bab_verify(
                    net, case.lower, case.upper, case.disjuncts, b, time.perf_counter() + args.bab
                )
                lb = np.inf if res.status == "unsat" else res.lower_bound
                per[name].append((t, unstable, lb))
                print(
                    f"{net_name} prop_{i} {name:9s} {t:6.1f} s  unstable {unstable:4d}  "
                    f"bab lb {lb:9.3f} ({res.status})",
                    flush=True,
                )
        for name, vals in per.items():
            rows.append(
                f"| {net_name} | {name} | {statistics.median(v[0] for v in vals):.1f} | "
                f"{statistics.median(v[1] for v in vals):.0f} | "
                + ", ".join(("proven" if v[2] == np.inf else f"{v[2]:.2f}") for v in vals)
                + " |"
            )
    cmd = "PYTHONPATH=. python benchmarks/bench_deep_bounds.py " + shlex.join(sys.argv[1:])
    body = [
        f"`{cmd.strip()}` — the first {args.instances} officially unsat eps-0.05 properties per "
        "net, first input box, 1 "
        f"thread, {args.bab:g} s of branch and bound from each set of bounds, shared 2-core "
        "machine.",
        "",
        "| net | bounds | median time (s) | median unstable neurons | BaB lower bound per "
        "instance (> 0 or proven: property holds) |",
        "|---|---|---|---|---|",
        *rows,
    ]
    write_section("Deep-layer bounds: alpha-CROWN vs LP (issue 8)", "\n".join(body), args.out)


if __name__ == "__main__":
    main()
