"""nn2mip against its peers (OMLT, PySCIPOpt-ML) on the same networks and instances (issue 7).

Every tool gets the same question: maximize ``y[target] - y[label]`` over the input ball,
targeted at the second-likeliest class (test image 18 -> 8 first on the gurobi-ml model). nn2mip
is run twice: with its sign early stop (``sign``: stop once the margin's sign is settled) and to
optimality (``opt``); the peers run to optimality by default (``--peer-modes opt sign`` gives
them the same early stop too). nn2mip runs as a user gets it by default: the default bound
method, and on ``sign`` runs the batch engine's PGD first (``--no-pgd`` for the MIP alone); the
variant is part of its name in the store, ``nn2mip[symbolic+pgd]``. Every witness, whoever
found it, is re-checked by nn2mip's float64 forward pass; verdict disagreements and optimal
margins differing by more than 1e-4 are flagged.

Results go to a JSONL store (one line per tool x instance x question; reruns skip what is
there), then the tables go into BENCHMARKS.md under "## Peers: OMLT and PySCIPOpt-ML (issue 7)".

    python benchmarks/bench_peers.py --suites gurobi vnn256x2 digits --time-limit 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adversarial.batch import BatchSpec  # noqa: E402
from adversarial.methods import METHODS  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from benchmarks.peers import report  # noqa: E402
from benchmarks.peers.instances import SUITES, Instance, Suite  # noqa: E402
from benchmarks.peers.runners import (  # noqa: E402
    Runner,
    guarded,
    nn2mip_tool,
    pgd_first,
    pyomo_backend_available,
    run_nn2mip_highs,
    run_nn2mip_pyomo,
    run_omlt,
    run_scipml,
)
from nn2mip.bounds import DEFAULT_BOUND_METHOD  # noqa: E402

TITLE = "Peers: OMLT and PySCIPOpt-ML (issue 7)"
# The run that produced the rows without a recorded command (all peer rows, legacy nn2mip rows).
FIRST_COMMAND = (
    "python benchmarks/bench_peers.py --suites gurobi vnn256x2 digits --workers 3 --images 10 "
    "--time-limit 60 --peer-modes sign opt"
)
STORE = Path(__file__).resolve().parent / "results" / "peers.jsonl"
RUNNERS: dict[str, Runner] = {
    "nn2mip": run_nn2mip_highs,
    "nn2mip-pyomo": run_nn2mip_pyomo,
    "OMLT": run_omlt,
    "PySCIPOpt-ML": run_scipml,
}
PACKAGES = ("highspy", "pyomo", "omlt", "pyscipopt", "pyscipopt-ml")


def _passes(args: argparse.Namespace) -> list[list[tuple[str, str]]]:
    """(tool, question) pairs, grouped in passes over all instances: every tool's ``sign``
    runs first, then every ``opt`` run, so a cut-short run still compares like with like."""
    tools = ["nn2mip"]
    if "nn2mip-pyomo" in args.tools:
        if pyomo_backend_available():
            tools.append("nn2mip-pyomo")
        else:
            print("nn2mip.pyomo_backend not importable: the Pyomo path is skipped", flush=True)
    peers = [t for t in ("OMLT", "PySCIPOpt-ML") if t in args.tools]
    passes = []
    for mode in ("sign", "opt"):
        jobs = [(t, mode) for t in tools if mode in args.nn2mip_modes]
        jobs += [(t, mode) for t in peers if mode in args.peer_modes]
        if jobs:
            passes.append(jobs)
    return passes


def _load(store: Path) -> list[dict[str, Any]]:
    if not store.exists():
        return []
    return [json.loads(line) for line in store.read_text().splitlines() if line.strip()]


def _latest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (tool, question, instance, legacy or not): the last one appended, so a
    remeasured run (appended from another store) replaces the older one."""
    keep = {(r["tool"], r["mode"], r["instance"], report.legacy(r)): r for r in rows}
    return list(keep.values())


def run(args: argparse.Namespace) -> None:
    """Run the suites, ``--workers`` of them at a time (each appends to the store)."""
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if args.workers <= 1 or len(args.suites) == 1:
        for name in args.suites:
            run_suite(args, name)
        return
    with ProcessPoolExecutor(args.workers) as pool:
        for fut in [pool.submit(run_suite, args, name) for name in args.suites]:
            fut.result()


def run_suite(args: argparse.Namespace, name: str) -> None:
    """Run every missing (tool, question, instance) of a suite; one JSON line per result."""
    store: Path = args.results
    # Legacy nn2mip rows (before variants were recorded) never stand in for a current run;
    # legacy peer rows do (remeasure them in another store and merge).
    done = {
        (r["tool"], r["mode"], r["instance"])
        for r in _load(store)
        if not (report.legacy(r) and r["tool"].startswith("nn2mip"))
    }
    suites: list[Suite] = SUITES[name](args.images)
    for jobs in _passes(args):
        for suite in suites:
            for inst in suite.instances:
                for tool, mode in jobs:
                    if (_display(tool, mode, args), mode, inst.key) not in done:
                        _run_one(args, suite, inst, tool, mode)


def _pgd(tool: str, mode: str, args: argparse.Namespace) -> bool:
    """PGD goes first on nn2mip's sign runs (as in the batch engine); an ``opt`` run asks for
    the optimal margin, which PGD cannot give."""
    return tool.startswith("nn2mip") and args.pgd and mode == "sign"


def _display(tool: str, mode: str, args: argparse.Namespace) -> str:
    """The tool's name in the store: nn2mip runs carry their variant, ``nn2mip[symbolic+pgd]``."""
    if tool.startswith("nn2mip"):
        method = args.method if tool == "nn2mip" and mode == "sign" else "mip"
        return nn2mip_tool(tool, args.bound_method, _pgd(tool, mode, args), method)
    return tool


def _commit() -> str:
    """The toolkit's git commit (``+dirty`` with uncommitted changes), recorded on each row."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    return rev + ("+dirty" if dirty else "")


def _run_one(args: argparse.Namespace, suite: Suite, inst: Instance, tool: str, mode: str) -> None:
    runner = RUNNERS[tool]
    name = _display(tool, mode, args)
    if tool.startswith("nn2mip"):
        runner = partial(runner, bound_method=args.bound_method)
        if tool == "nn2mip" and mode == "sign":
            runner = partial(runner, method=args.method)
        if _pgd(tool, mode, args):
            runner = pgd_first(runner, name)
    res = guarded(runner, name)(suite.network, inst, args.time_limit, mode).as_dict()
    res["time_limit"] = args.time_limit
    res["load_avg"] = round(os.getloadavg()[0], 2)
    res["commit"] = args.commit
    res["command"] = args.command
    with args.results.open("a") as f:  # one short append per line: safe across workers
        f.write(json.dumps(res) + "\n")
    print(
        f"{inst.key:45s} {name:22s} {mode:4s} {res['verdict']:11s} "
        f"build {res['build']:7.3f} solve {res['solve']:7.2f} "
        f"total {res['total']:7.2f} bin {res['binaries']} {res['note']}",
        flush=True,
    )


def _versions() -> str:
    out = []
    for p in PACKAGES:
        try:
            out.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            out.append(f"{p} (not installed)")
    return ", ".join(out)


def _scip_version() -> str:
    try:
        from pyscipopt import Model

        return f" (SCIP {Model().version()})"
    except Exception:  # noqa: BLE001 - only a label
        return ""


def write(args: argparse.Namespace) -> str:
    """Build the Markdown section from the store (all rows), print it, write it if asked."""
    rows = _latest(_load(args.results))
    if not rows:
        return ""
    tls = sorted({r["time_limit"] for r in rows})
    loads = [r["load_avg"] for r in rows]
    flags = report.disagreements(rows)
    checked = sum(1 for r in rows if r["verdict"] == "adversarial" and r["witness_ok"])
    adv = sum(1 for r in rows if r["verdict"] == "adversarial")
    commands = list(dict.fromkeys(r.get("command", FIRST_COMMAND) for r in rows))
    body = "\n\n".join(
        [
            "Commands (each runs what the store `benchmarks/results/peers.jsonl` is missing and "
            "appends it; the command is recorded on every row):\n\n"
            + "\n".join(f"- `{c}`" for c in commands)
            + "\n\nTables rebuilt from the store with `python benchmarks/bench_peers.py "
            "--report-only --notes benchmarks/results/peers_notes.md`.",
            "Same question for every tool: maximize `y[target] - y[label]` over the ball, target "
            "= second-likeliest class (gurobi-ml: image 18 -> 8 first, as in its notebook). "
            "`sign` = stop once the margin's sign is settled (nn2mip's default); `opt` = solve "
            f"to optimality. 1 thread per solver, time limit {', '.join(map(str, tls))} s per "
            f"run, `nice -n 10` on a shared 2-core machine (1-min load average during the runs "
            f"{min(loads):.1f}-{max(loads):.1f}, median per row in the `load` column: absolute "
            "times are noisy). "
            "Build = modeling up to a model ready to solve (nn2mip: bounds + sparse "
            "formulation; OMLT: NetworkDefinition + OmltBlock + objective/L1 rows; PySCIPOpt-ML: "
            "add_predictor_constr + objective/L1 rows); solve = the solve call (Pyomo paths "
            "include Pyomo's hand-off to HiGHS); total = build + solve + witness re-check. "
            "Timeouts count at their full time; `>=` marks a median that is a timeout. Ratios "
            "are medians over instances of the per-instance ratio. Sizes are of the model "
            "handed to the solver, before its presolve.",
            f"nn2mip variants are named by bounds and PGD: **`{report.HEADLINE}` (sign) is the "
            "headline row**, nn2mip as a user gets it by default: the batch engine's cheap "
            "attacks first (center check, then `pgd_attack` with the batch defaults, "
            f"{BatchSpec.pgd_steps} steps x {BatchSpec.pgd_restarts} restarts; a witness that "
            "passes `check_witness` decides adversarial and no model is built), then the MIP "
            f"with `{DEFAULT_BOUND_METHOD}` bounds and the sign stop on the time left. Its total "
            "includes the PGD time; `by PGD` counts the verdicts PGD gave, and build/solve/size "
            "medians are over the runs that built a model. "
            f"`{report.HEADLINE_OPT}` is the same MIP without PGD (the `opt` question, the "
            "optimal margin, is one PGD cannot answer, so `opt` runs never use it). Rows marked "
            "`old` are the first run's (beside other jobs, load up to 16: see `load`): "
            "nn2mip with interval bounds (`nn2mip`, `nn2mip-pyomo`) or an older sign stop "
            "(`nn2mip[symbolic]`), no PGD, and the peers. That load inflated the old peer times "
            "many times over, so the fastest peer was remeasured beside the current nn2mip "
            "rows (light load, one process at a time) and the targets use those rows where "
            "they exist.",
            f"Versions: {_versions()}{_scip_version()}.",
            "How each tool gets the network: nn2mip reads the ONNX files itself (digits nets "
            "come from torch); OMLT gets a NetworkDefinition of DenseLayers built from the same "
            "float64 weights, with the region's box as input bounds (its ONNX reader loads the "
            "gurobi-ml model but raises KeyError '11' on mnist-net_256x2.onnx, Flatten + Gemm on a "
            "[1,784,1] input); PySCIPOpt-ML gets a float64 torch Sequential of the same weights "
            "and `formulation='bigm'` (its ONNX path rejects Flatten and raised IndexError on the "
            "gurobi-ml model here). For L1 balls the peers get `t >= |x - c|`, `sum t <= eps` "
            "rows written by this script; their input box is then the whole [0,1] domain. Peer "
            "`sign` runs: HiGHS `objective_target`/`objective_bound` through appsi for OMLT, "
            "an objective limit of 0 plus a one-solution limit for SCIP.",
            report.summary_table(rows, tls[-1]),
            "Targets (each nn2mip sign variant against the fastest peer run, either question, "
            "on the instances both cover; the peers run without PGD):",
            report.targets_table(rows),
            *([args.notes.read_text().strip()] if args.notes else []),
            f"Witnesses: {checked}/{adv} adversarial verdicts carry a witness that passed the "
            "float64 re-check (a verdict needs one).",
            "Cross-checks: "
            + (
                "no verdict disagreement."
                if not any(m.startswith("VERDICT") for m in flags)
                else "**VERDICTS DISAGREE** (see below)."
            )
            + ("" if not flags else "\n\n" + "\n".join(f"- **{m}**" for m in flags)),
            "Per instance (verdict, total s, optimal margin when proven; rows of the first run "
            "are left out, they are in the summary and the store):",
            report.instance_table(rows),
        ]
    )
    if args.write:
        write_section(TITLE, body)
    return body


def _run_argv(argv: list[str]) -> list[str]:
    """The arguments that produce the results (report-only flags dropped)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--notes":
            skip = True
        elif a not in ("--report-only", "--no-write") and not a.startswith("--notes="):
            out.append(a)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", nargs="+", default=["gurobi", "vnn256x2", "digits"])
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument(
        "--tools",
        nargs="*",
        default=["nn2mip-pyomo", "OMLT", "PySCIPOpt-ML"],
        help="peers to run besides nn2mip (highspy)",
    )
    ap.add_argument(
        "--bound-method",
        default=DEFAULT_BOUND_METHOD,
        help=f"nn2mip's neuron bounds (interval, symbolic, lp; default {DEFAULT_BOUND_METHOD})",
    )
    ap.add_argument(
        "--pgd",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="nn2mip sign runs try PGD before the MIP, as the batch engine does (default on)",
    )
    ap.add_argument(
        "--method",
        choices=METHODS,
        default="mip",
        help="nn2mip (highspy) sign runs: MIP only, branch and bound then MIP (auto), or "
        "branch and bound only",
    )
    ap.add_argument("--nn2mip-modes", nargs="+", default=["sign", "opt"])
    ap.add_argument("--peer-modes", nargs="+", default=["opt"])
    ap.add_argument("--results", type=Path, default=STORE)
    ap.add_argument("--workers", type=int, default=1, help="suites run in parallel")
    ap.add_argument("--notes", type=Path, help="Markdown findings to put under the tables")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the table")
    ap.add_argument("--no-write", dest="write", action="store_false")
    args = ap.parse_args()
    args.command = " ".join(["python benchmarks/bench_peers.py", *_run_argv(sys.argv[1:])])
    t0 = time.perf_counter()
    if not args.report_only:
        args.commit = _commit()
        run(args)
    print(write(args))
    print(f"\n[{time.perf_counter() - t0:.0f} s]")


if __name__ == "__main__":
    main()
