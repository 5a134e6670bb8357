"""VNN-COMP 2022 mnist_fc: run ``verify_property`` on the official instances, compare each verdict
with the official "True Result", and write a table into BENCHMARKS.md.

Resumable: every finished instance is appended to ``benchmarks/out/vnncomp_mnist_fc.csv`` at once;
a rerun skips instances already there (delete the file to start over). A sat/unsat verdict that
contradicts the official one is a WRONG answer and is reported loudly.

    nice -n 10 python benchmarks/bench_vnncomp.py [--nets 256x2 256x4] [--timeout-cap 120]
        [--limit N] [--threads 1] [--bounds METHOD] [--report-only]
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
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adversarial.methods import METHODS  # noqa: E402
from adversarial.vnnlib_problem import VerifyResult, verify_property  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from nn2mip.network import Network  # noqa: E402
from nn2mip.onnx_io import load_onnx  # noqa: E402
from nn2mip.vnnlib import load_vnnlib, read_counterexample, result_text  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "vnncomp_mnist_fc"
OUT = ROOT / "benchmarks" / "out"
SECTION = "VNN-COMP 2022 mnist_fc (issue 8)"
FIELDS = [
    "network",
    "vnnlib",
    "timeout",
    "result",
    "official",
    "status",
    "time_s",
    "verify_s",
    "decided_by",
    "bound_method",
    "binaries",
    "mip_solves",
    "nodes",
    "method",
    "bab_s",
    "bab_domains",
    "cex_rechecked",
    "onnxruntime_agrees",
    "note",
]


def net_name(onnx_path: str) -> str:
    """``onnx/mnist-net_256x2.onnx`` -> ``mnist-net_256x2``."""
    return Path(onnx_path).name.removesuffix(".onnx")


def load_instances() -> list[tuple[str, str, float]]:
    with open(DATA / "vnncomp2022" / "instances.csv", newline="") as f:
        return [(r[0], r[1], float(r[2])) for r in csv.reader(f) if r]


def load_official() -> dict[tuple[str, str], dict[str, str]]:
    with open(DATA / "summary" / "mnist_fc_vnncomp2022_summary.csv", newline="") as f:
        return {(r["network"], r["vnnlib"]): r for r in csv.DictReader(f)}


def load_done(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {(r["network"], r["vnnlib"]): r for r in csv.DictReader(f)}


def judge(ours: str, official: str) -> str:
    """ok (same decided verdict), WRONG (sat vs unsat), or unsolved."""
    if ours in ("sat", "unsat"):
        if official in ("sat", "unsat") and ours != official:
            return "WRONG"
        return "ok"
    return "unsolved"


def recheck_cex(out_file: Path, onnx_file: Path, network, prop) -> tuple[bool, str]:  # noqa: ANN001
    """Read back the written counterexample; re-check it with our float64 forward pass, and
    report whether onnxruntime (float32, what VNN-COMP runs) agrees on the violation."""
    x, y_file = read_counterexample(out_file)
    ok = prop.is_violated_by(x, network.forward(x), 1e-9) and np.allclose(
        y_file, network.forward(x), rtol=0, atol=1e-9
    )
    try:
        import onnxruntime as ort
    except ImportError:
        return bool(ok), "n/a"
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    y32 = sess.run(None, {inp.name: x.astype(np.float32).reshape(shape)})[0].reshape(-1)
    return bool(ok), str(bool(prop.is_violated_by(x, y32.astype(np.float64), 1e-9)))


def verify_and_recheck(
    onnx_file: Path, prop_file: Path, timeout: float, args: argparse.Namespace, cex_file: Path
) -> tuple[Network, VerifyResult, dict[str, object]]:
    """``verify_property`` on one instance, timed; a sat counterexample is written to
    ``cex_file`` in the VNN-COMP format, read back and re-checked (float64 and onnxruntime).
    Returns the net, the result and the CSV fields both VNN-COMP scripts record."""
    t0 = time.perf_counter()
    net = load_onnx(onnx_file)
    prop = load_vnnlib(prop_file)
    r = verify_property(
        net, prop, timeout, threads=args.threads, bound_method=args.bounds, method=args.method
    )
    elapsed = time.perf_counter() - t0
    cex_ok: object = ""
    ort_ok = ""
    if r.result == "sat":
        cex_file.parent.mkdir(parents=True, exist_ok=True)
        cex_file.write_text(result_text(r.result, r.x, r.y))
        cex_ok, ort_ok = recheck_cex(cex_file, onnx_file, net, prop)
    return (
        net,
        r,
        {
            "result": r.result,
            "time_s": f"{elapsed:.3f}",
            "verify_s": f"{r.total_time:.3f}",
            "decided_by": r.decided_by,
            "bound_method": r.bound_method,
            "binaries": max((s.binaries for s in r.stats), default=0),
            "mip_solves": r.mip_solves,
            "nodes": r.nodes,
            "bab_domains": r.bab_domains,
            "cex_rechecked": cex_ok,
            "onnxruntime_agrees": ort_ok,
            "note": r.note[:200],
        },
    )


def run_one(
    onnx_rel: str, prop_rel: str, timeout: float, args: argparse.Namespace
) -> dict[str, object]:
    cex = OUT / "cex" / f"{net_name(onnx_rel)}_{Path(prop_rel).stem}.counterexample"
    _, r, row = verify_and_recheck(
        DATA / onnx_rel, DATA / "vnncomp2022" / prop_rel, timeout, args, cex
    )
    return {**row, "method": args.method, "bab_s": f"{r.bab_time:.3f}"}


def median_text(xs: list[float]) -> str:
    """The median to one decimal, "-" for none."""
    return f"{statistics.median(xs):.1f}" if xs else "-"


def report(rows: list[dict[str, str]], official: dict, command: str, note: str = "") -> str:
    """The Markdown section: per network ours vs alpha-beta-CROWN on the same instances."""
    lines = [
        f"Command: `{command}`",
        "",
        "Each instance: ONNX network + VNN-LIB property with its official timeout (maybe capped, "
        "column `timeout`). Our time is wall clock for loading the ONNX and VNN-LIB files and "
        "verifying (PGD, bounds, branch and bound and/or HiGHS MIPs, 1 thread) on a shared "
        "2-core machine; "
        "alpha-beta-CROWN's time is the official 2022 one (GPU, including its ~6 s start-up). "
        "`wrong` counts sat/unsat verdicts that contradict the official True Result; every sat "
        "counterexample was written in the VNN-COMP format, read back and re-checked.",
        "",
        "| network | run | timeout s | sat | unsat | wrong | timeout/unknown | median s (solved) "
        "| a-b-CROWN solved (of run) | a-b-CROWN median s | cex re-checked (float64) "
        "| onnxruntime float32 agrees |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_net: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_net.setdefault(r["network"], []).append(r)
    totals = dict.fromkeys(("run", "sat", "unsat", "wrong", "open", "abc"), 0)
    for net in sorted(by_net):
        rs = by_net[net]
        sat = sum(r["result"] == "sat" and r["status"] == "ok" for r in rs)
        unsat = sum(r["result"] == "unsat" and r["status"] == "ok" for r in rs)
        wrong = sum(r["status"] == "WRONG" for r in rs)
        open_ = sum(r["result"] not in ("sat", "unsat") for r in rs)
        solved_t = [float(r["time_s"]) for r in rs if r["status"] == "ok"]
        abc_t = []
        for r in rs:
            o = official[(net, r["vnnlib"])]
            if o["alpha_beta_crown_result"] == o["official_true_result"]:
                abc_t.append(float(o["alpha_beta_crown_time_s"]))
        cex = [r["cex_rechecked"] for r in rs if r["result"] == "sat"]
        ort = [r.get("onnxruntime_agrees", "") for r in rs if r["result"] == "sat"]
        tos = sorted({r["timeout"] for r in rs})
        lines.append(
            f"| {net} | {len(rs)} | {'/'.join(tos)} | {sat} | {unsat} | "
            f"{f'**{wrong}**' if wrong else 0} | {open_} | {median_text(solved_t)} | "
            f"{len(abc_t)} | {median_text(abc_t)} | {cex.count('True')}/{len(cex)} | "
            f"{ort.count('True')}/{len(ort)} |"
        )
        for key, v in zip(totals, (len(rs), sat, unsat, wrong, open_, len(abc_t)), strict=True):
            totals[key] += v
    lines.append(
        f"| **total** | {totals['run']} | | {totals['sat']} | {totals['unsat']} | "
        f"{totals['wrong']} | {totals['open']} | | {totals['abc']} | | | |"
    )
    wrong_rows = [r for r in rows if r["status"] == "WRONG"]
    if wrong_rows:
        lines += ["", "**WRONG ANSWERS:**", ""]
        lines += [
            f"- {r['network']} {r['vnnlib']}: ours {r['result']}, official {r['official']}"
            for r in wrong_rows
        ]
    open_rows = [r for r in rows if r["result"] not in ("sat", "unsat")]
    if open_rows:
        parts = []
        for net in sorted(by_net):
            rs = [r for r in open_rows if r["network"] == net]
            if not rs:
                continue
            sats = [Path(r["vnnlib"]).stem for r in rs if r["official"] == "sat"]
            text = f"{net.removeprefix('mnist-net_')}: {len(rs)}"
            if len(rs) <= 6:
                text += (
                    " ("
                    + ", ".join(f"{Path(r['vnnlib']).stem} official {r['official']}" for r in rs)
                    + ")"
                )
            elif sats:
                text += f" (official sat among them: {', '.join(sats)})"
            parts.append(text)
        lines += ["", "Not decided: " + "; ".join(parts) + "."]
    binaries = {
        net: [int(r["binaries"]) for r in rs if r["binaries"] not in ("", "0")]
        for net, rs in by_net.items()
    }
    if any(binaries.values()):
        lines += [
            "",
            "Binaries (unstable ReLUs) per MIP, median: "
            + ", ".join(
                f"{net.removeprefix('mnist-net_')} {statistics.median(b):.0f}"
                for net, b in sorted(binaries.items())
                if b
            )
            + ".",
        ]
    methods = sorted({r["bound_method"] for r in rows})
    lines += ["", f"Bound method(s): {', '.join(methods)}."]
    searches = sorted({r.get("method") or "mip" for r in rows})
    by_bab = {
        net: sum("bab" in r["decided_by"] and r["status"] == "ok" for r in rs)
        for net, rs in sorted(by_net.items())
    }
    lines += [
        "",
        f"Open disjuncts settled by: {', '.join(searches)} (`verify_property(method=...)`). "
        "Decided with branch and bound taking part: "
        + ", ".join(f"{net.removeprefix('mnist-net_')} {n}" for net, n in by_bab.items())
        + ".",
    ]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def _without_note(argv: list[str]) -> list[str]:
    """The command line to print: no --report-only, no --note text."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--note":
            skip = True
        elif a != "--report-only" and not a.startswith("--note="):
            out.append(a)
    return out


def record_instances(
    out: Path,
    fields: list[str],
    jobs: list[tuple[tuple[str, str], float, str, object]],
    done: dict[tuple[str, str], dict[str, str]],
    limit: int | None,
    run: Callable[[object, float], dict[str, object]],
    reference: str,
) -> None:
    """Run the ``jobs`` (key, timeout, reference verdict, job) not yet ``done``, at most
    ``limit`` of them, appending each row to the CSV ``out`` at once (fsync: a killed run loses
    at most the instance in flight). A verdict that contradicts the reference is reported loudly.
    Shared by this script and ``bench_vnncomp2021.py``."""
    fresh = not out.exists()
    new = 0
    with open(out, "a", newline="") as f:
        w = csv.DictWriter(f, fields)
        if fresh:
            w.writeheader()
        for key, t, ref, job in jobs:
            if key in done:
                continue
            if limit is not None and new >= limit:
                break
            row: dict[str, object] = {
                "network": key[0],
                "vnnlib": key[1],
                "timeout": f"{t:g}",
                reference: ref,
            }
            row.update(run(job, t))
            row["status"] = judge(str(row["result"]), ref)
            w.writerow(row)
            f.flush()
            os.fsync(f.fileno())
            done[key] = {k: str(v) for k, v in row.items()}
            new += 1
            flag = "   <<<<<< WRONG ANSWER" if row["status"] == "WRONG" else ""
            print(
                f"{key[0]} {key[1]:26s} {row['result']:8s} {reference} {ref:7s} "
                f"{float(row['time_s']):7.2f} s  {row['decided_by']}{flag}",
                flush=True,
            )
            if row["status"] == "WRONG":
                print(f"WRONG ANSWER on {key}: {row}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=None, help="e.g. 256x2 256x4 (default: all)")
    ap.add_argument("--timeout-cap", type=float, default=None, help="lower the official timeouts")
    ap.add_argument("--limit", type=int, default=None, help="run at most N new instances")
    ap.add_argument("--threads", type=int, default=1, help="HiGHS and torch threads")
    ap.add_argument("--method", choices=METHODS, default="auto", help="see verify_property")
    ap.add_argument(
        "--bounds",
        default=None,
        help="bound method (default: the tightest available, lp)",
    )
    ap.add_argument("--out", type=Path, default=OUT / "vnncomp_mnist_fc.csv")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the Markdown table")
    ap.add_argument("--no-markdown", action="store_true", help="leave BENCHMARKS.md alone")
    ap.add_argument("--note", default="", help="a paragraph to add under the table")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 2
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    official = load_official()
    done = load_done(args.out)
    instances = load_instances()
    if args.nets:
        instances = [i for i in instances if any(f"_{n}." in i[0] for n in args.nets)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        jobs = []
        for onnx_rel, prop_rel, timeout in instances:
            key = (net_name(onnx_rel), Path(prop_rel).name)
            t = min(timeout, args.timeout_cap) if args.timeout_cap else timeout
            jobs.append((key, t, official[key]["official_true_result"], (onnx_rel, prop_rel)))
        record_instances(
            args.out,
            FIELDS,
            jobs,
            done,
            args.limit,
            lambda job, t: run_one(*job, t, args),
            "official",
        )
    rows = list(done.values())
    argv = " ".join(shlex.quote(a) for a in _without_note(sys.argv[1:]))
    command = f"nice -n 10 python benchmarks/bench_vnncomp.py {argv}".strip()
    if rows and not args.no_markdown:
        write_section(SECTION, report(rows, official, command, args.note))
    wrong = sum(r["status"] == "WRONG" for r in rows)
    print(f"{len(rows)} instances recorded, {wrong} wrong", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
