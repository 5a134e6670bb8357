"""Branch and bound on VNN-COMP mnist_fc instances: float64 search vs float32 search, side by side.

Every variant starts from the same root bounds (verify's default, LP started from alpha-CROWN,
computed once per instance) and gets ``--budget`` seconds; proofs are float64 in every variant
(the float32 search recomputes each one in float64). Instances: the ones branch and bound
decided in the full run (``--csv``, column ``decided_by``), and ``--hard`` ones it left open.
Reports time to decide, domains per second, and the lower bound reached where undecided.

    PYTHONPATH=. python benchmarks/bench_bab.py [--budget 60]
"""

from __future__ import annotations

import argparse
import csv
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adversarial.bab import bab_verify  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from nn2mip.bounds import compute_bounds  # noqa: E402
from nn2mip.onnx_io import load_onnx  # noqa: E402
from nn2mip.region import box_region  # noqa: E402
from nn2mip.vnnlib import load_vnnlib  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "vnncomp_mnist_fc"
VARIANTS = {
    "float64, refine (before)": dict(dtype=torch.float64, refine=True),
    "float32, refine (default)": dict(dtype=torch.float32, refine=True),
    "float32, no refine": dict(dtype=torch.float32, refine=False),
}
HARD = ["256x4/prop_8_0.03", "256x4/prop_0_0.05", "256x4/prop_6_0.03", "256x6/prop_1_0.03"]


def _instances(path: Path, hard: list[str]) -> list[str]:
    """``net/prop`` names: those decided with branch and bound in the run at ``path``, then
    ``hard``."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = [
        f"{r['network'].split('_')[-1].removesuffix('.onnx')}/{Path(r['vnnlib']).stem}"
        for r in rows
        if "bab" in r["decided_by"]
    ]
    return out + [h for h in hard if h not in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per variant")
    ap.add_argument(
        "--csv", type=Path, default=ROOT / "benchmarks/results/vnncomp_mnist_fc_2026-11-28.csv"
    )
    ap.add_argument("--hard", nargs="*", default=HARD, help="more instances, as net/prop")
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--note", default="", help="a paragraph to add under the tables")
    args = ap.parse_args()
    torch.set_num_threads(1)
    lines, per = [], {v: [] for v in VARIANTS}
    for name in _instances(args.csv, args.hard):
        net_name, prop = name.split("/")
        net = load_onnx(DATA / "onnx" / f"mnist-net_{net_name}.onnx")
        case = load_vnnlib(DATA / "vnncomp2022" / "vnnlib" / f"{prop}.vnnlib").cases[0]
        bounds = compute_bounds(net, box_region(case.lower, case.upper), "lp")
        cells = []
        for vname, kw in VARIANTS.items():
            deadline = time.perf_counter() + args.budget
            r = bab_verify(net, case.lower, case.upper, case.disjuncts, bounds, deadline, **kw)
            rate = r.domains / max(r.time, 1e-9)
            per[vname].append((r.status == "unsat", r.time, rate))
            cells.append(
                f"{r.time:.1f} s" if r.status == "unsat" else f"open ({r.lower_bound:.3g})"
            )
            cells[-1] += f", {r.domains} dom"
            print(name, vname, r.status, f"{r.time:.1f}", r.domains, r.lower_bound, flush=True)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    summary = []
    base = per["float64, refine (before)"]
    for vname, vals in per.items():
        solved = [v[1] for v in vals if v[0]]
        both = [b[1] / v[1] for b, v in zip(base, vals, strict=True) if b[0] and v[0]]
        summary.append(
            f"| {vname} | {len(solved)}/{len(vals)} | "
            f"{statistics.median(solved):.1f} | "
            f"{statistics.median(both):.2f}x | "
            f"{statistics.median(v[2] for v in vals):.0f} |"
            if solved and both
            else f"| {vname} | {len(solved)}/{len(vals)} | - | - | - |"
        )
    cmd = "PYTHONPATH=. python benchmarks/bench_bab.py " + shlex.join(sys.argv[1:])
    body = [
        f"`{cmd.strip()}` — branch and bound alone (no PGD, no MIP) from the same LP root bounds, "
        f"{args.budget:g} s per variant, 1 thread, first input box of each property. Proofs are "
        "float64 in every variant.",
        "",
        "| variant | decided | median s (decided) | median speedup vs float64 (decided by both) "
        "| median domains/s |",
        "|---|---|---|---|---|",
        *summary,
        "",
        "| instance | " + " | ".join(VARIANTS) + " |",
        "|---|" + "---|" * len(VARIANTS),
        *lines,
        "",
        args.note,
    ]
    write_section("Branch and bound: float32 search (issue 8)", "\n".join(body), args.out)


if __name__ == "__main__":
    main()
