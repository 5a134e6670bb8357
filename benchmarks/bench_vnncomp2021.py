"""VNN-COMP 2021 convolutional sets (verivital, oval21): run ``verify_property`` on the official
instances, compare each verdict with the 2021 ``consensus`` (SOURCES.md: the majority of the
tools that decided; two 2021 tools were wrong on nearly every verivital instance), and count
decided / wrong. Every sat counterexample is written in the VNN-COMP format, read back, and
re-checked in float64 and by onnxruntime (float32).

Resumable: every finished instance is appended to ``benchmarks/out/vnncomp2021_<set>.csv`` at
once; a rerun skips instances already there (delete the file to start over). A verdict that
contradicts the consensus is a WRONG answer, reported loudly (exit status 1).

    nice -n 10 python benchmarks/bench_vnncomp2021.py --set verivital [--timeout-cap 60]
        [--limit N] [--threads 1] [--bounds METHOD] [--method auto] [--report-only]

Branch and bound runs where it applies (ReLU hidden layers); on max-pooling nets ``method``
"auto" skips it and settles open disjuncts by the MIP (column ``search``).
"""

from __future__ import annotations

import os

# One BLAS thread: the machine is shared and the attack's small matmuls only lose from threads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adversarial.bab import bab_fits  # noqa: E402
from adversarial.methods import METHODS  # noqa: E402
from benchmarks.bench_vnncomp import (  # noqa: E402
    median_text,
    record_instances,
    verify_and_recheck,
)
from benchmarks.markdown import write_section  # noqa: E402

# The page block ``--write-page`` rewrites (BENCHMARKS.md section 3).
TITLE = "VNN-COMP 2021 convolutional nets (issue 21)"

DATA = ROOT.parent / "shared" / "data" / "vnncomp2021_conv"
OUT = ROOT / "benchmarks" / "out"
SETS = {"verivital": ("verivital", ""), "oval21": ("oval21", "")}
FIELDS = [
    "network",
    "vnnlib",
    "timeout",
    "result",
    "consensus",
    "status",
    "time_s",
    "verify_s",
    "decided_by",
    "search",
    "bound_method",
    "bounds_s",
    "binaries",
    "mip_solves",
    "nodes",
    "bab_domains",
    "cex_rechecked",
    "onnxruntime_agrees",
    "note",
]


def set_dir(name: str) -> Path:
    return DATA / name


def load_instances(name: str) -> list[tuple[str, str, float]]:
    """(onnx path, vnnlib path, official timeout) relative to the set's directory."""
    with open(set_dir(name) / f"{name}_instances.csv", newline="") as f:
        return [(r[0].strip(), r[1].strip(), float(r[2])) for r in csv.reader(f) if r]


def load_consensus(name: str) -> dict[tuple[str, str], dict[str, str]]:
    with open(set_dir(name) / "summary.csv", newline="") as f:
        return {(Path(r["network"]).name, r["vnnlib"]): r for r in csv.DictReader(f)}


def load_done(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {(r["network"], r["vnnlib"]): r for r in csv.DictReader(f)}


def run_one(
    name: str, onnx_rel: str, prop_rel: str, timeout: float, args: argparse.Namespace
) -> dict[str, object]:
    cex = OUT / "cex2021" / f"{Path(onnx_rel).stem}_{Path(prop_rel).stem}.counterexample"
    net, r, row = verify_and_recheck(
        set_dir(name) / onnx_rel, set_dir(name) / prop_rel, timeout, args, cex
    )
    search = "mip" if args.method == "mip" or not bab_fits(net) else args.method
    return {**row, "search": search, "bounds_s": f"{r.bounds_time:.3f}"}


def report(name: str, rows: list[dict[str, str]], consensus: dict, command: str) -> str:
    """Markdown: per network decided / wrong / open, times, and the 2021 tools' counts."""
    lines = [
        f"Command: `{command}`",
        "",
        "| network | run | timeout s | sat | unsat | wrong | open | median s (decided) "
        "| total s | consensus sat/unsat/unknown | cex re-checked | onnxruntime agrees |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_net: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_net.setdefault(r["network"], []).append(r)
    for net in sorted(by_net):
        rs = by_net[net]
        ok = [r for r in rs if r["status"] == "ok"]
        sat = sum(r["result"] == "sat" for r in ok)
        unsat = sum(r["result"] == "unsat" for r in ok)
        wrong = sum(r["status"] == "WRONG" for r in rs)
        cons = [r["consensus"] for r in rs]
        cex = [r["cex_rechecked"] for r in rs if r["result"] == "sat"]
        ort = [r["onnxruntime_agrees"] for r in rs if r["result"] == "sat"]
        lines.append(
            f"| {net} | {len(rs)} | {'/'.join(sorted({r['timeout'] for r in rs}))} | {sat} | "
            f"{unsat} | {f'**{wrong}**' if wrong else 0} | {len(rs) - len(ok) - wrong} | "
            f"{median_text([float(r['time_s']) for r in ok])} | "
            f"{sum(float(r['time_s']) for r in rs):.0f} | "
            f"{cons.count('sat')}/{cons.count('unsat')}/{cons.count('unknown')} | "
            f"{cex.count('True')}/{len(cex)} | {ort.count('True')}/{len(ort)} |"
        )
    wrong_rows = [r for r in rows if r["status"] == "WRONG"]
    if wrong_rows:
        lines += ["", "**WRONG ANSWERS:**", ""]
        lines += [
            f"- {r['network']} {r['vnnlib']}: ours {r['result']}, consensus {r['consensus']}"
            for r in wrong_rows
        ]
    open_rows = [r for r in rows if r["result"] not in ("sat", "unsat")]
    if open_rows:
        lines += [
            "",
            "Not decided: "
            + ", ".join(
                f"{r['network'].removesuffix('.onnx')} {Path(r['vnnlib']).stem} "
                f"(consensus {r['consensus']}, {r['result']})"
                for r in open_rows
            )
            + ".",
        ]
    decided_by = statistics.multimode([r["decided_by"] for r in rows if r["decided_by"]] or [""])
    lines += [
        "",
        f"Set {name}; search per net: "
        + ", ".join(f"{n} {sorted({r['search'] for r in by_net[n]})}" for n in sorted(by_net))
        + f"; bound method(s): {', '.join(sorted({r['bound_method'] for r in rows}))}; "
        f"most common deciding stage: {decided_by[0]}.",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=sorted(SETS), default="verivital")
    ap.add_argument("--nets", nargs="+", default=None, help="substrings of network file names")
    ap.add_argument("--timeout-cap", type=float, default=None, help="lower the official timeouts")
    ap.add_argument("--limit", type=int, default=None, help="run at most N new instances")
    ap.add_argument("--threads", type=int, default=1, help="HiGHS and torch threads")
    ap.add_argument("--method", choices=METHODS, default="auto", help="see verify_property")
    ap.add_argument("--bounds", default=None, help="bound method (default: the tightest, lp)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true", help="only print the Markdown table")
    ap.add_argument(
        "--write-page",
        action="store_true",
        help=f"also put the table into BENCHMARKS.md's '{TITLE}' block",
    )
    args = ap.parse_args()
    if not set_dir(args.set).is_dir():
        print(f"shared data not found at {set_dir(args.set)}", file=sys.stderr)
        return 2
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    out = args.out or OUT / f"vnncomp2021_{args.set}.csv"
    consensus = load_consensus(args.set)
    done = load_done(out)
    instances = load_instances(args.set)
    if args.nets:
        instances = [i for i in instances if any(n in i[0] for n in args.nets)]
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        jobs = []
        for onnx_rel, prop_rel, timeout in instances:
            key = (Path(onnx_rel).name, Path(prop_rel).name)
            t = min(timeout, args.timeout_cap) if args.timeout_cap else timeout
            jobs.append((key, t, consensus[key]["consensus"], (onnx_rel, prop_rel)))
        record_instances(
            out,
            FIELDS,
            jobs,
            done,
            args.limit,
            lambda job, t: run_one(args.set, *job, t, args),
            "consensus",
        )
    rows = list(done.values())
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "--report-only")
    command = f"nice -n 10 python benchmarks/bench_vnncomp2021.py {argv}".strip()
    if rows:
        text = report(args.set, rows, consensus, command)
        (out.with_suffix(".md")).write_text(text + "\n")
        print(text)
        if args.write_page:
            write_section(TITLE, text)
    wrong = sum(r["status"] == "WRONG" for r in rows)
    print(f"{len(rows)} instances recorded, {wrong} wrong", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
