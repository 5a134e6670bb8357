"""``nn2mip attack``: batch adversarial search over models x inputs x eps x norms x problems."""

from __future__ import annotations

import argparse
import sys

from adversarial.methods import METHODS


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "attack",
        help="batch adversarial search (PGD, then MIP) into an SQLite results file",
        description="Every combination of MODEL, --indices, --eps, --norm and --problem is one "
        "instance. Finished instances are stored in --db as they complete; rerunning the same "
        "command finishes only the missing ones.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="model files (.safetensors, .onnx)")
    p.add_argument("--data", default="digits", help="data set: digits (embedded) or mnist")
    p.add_argument("--data-dir", default=None, help="directory of the MNIST IDX files")
    p.add_argument("--indices", default="0-9", help="test inputs: 0-9, 0,3,5 or 0-4,7")
    p.add_argument("--eps", type=float, nargs="+", default=[0.05], help="radii (>= 0)")
    p.add_argument("--norm", nargs="+", default=["inf"], help="inf and/or 1")
    p.add_argument(
        "--problem",
        nargs="+",
        default=["untargeted"],
        help="untargeted, targeted, seed (runner-up vs predicted, early stop), min-distortion "
        "(eps is then the largest radius searched)",
    )
    p.add_argument("--target", type=int, nargs="+", default=None, help="classes for targeted")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance")
    p.add_argument("--threads", type=int, default=1, help="HiGHS threads per instance")
    p.add_argument("--jobs", type=int, default=1, help="instances solved in parallel")
    p.add_argument("--db", required=True, help="SQLite results file (created or resumed)")
    p.add_argument(
        "--dask", default=None, metavar="ADDRESS", help="Dask scheduler address, or 'local'"
    )
    p.add_argument("--dask-timeout", type=float, default=10.0, help="seconds to reach --dask")
    p.add_argument("--no-pgd", action="store_true", help="skip the PGD attack (MIP only)")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="mip",
        help="targeted and seed problems on inf-norm balls: MIP, branch and bound then MIP "
        "(auto), or branch and bound only",
    )
    p.add_argument("--pgd-steps", type=int, default=40)
    p.add_argument("--pgd-restarts", type=int, default=8)
    p.add_argument(
        "--bounds",
        default="symbolic",
        help="interval, symbolic (default), alpha, lp or mip (the last three: at most half of "
        "--time-limit)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from adversarial.batch import BatchSpec, parse_indices, run_batch

    spec = BatchSpec(
        models=args.models,
        indices=parse_indices(args.indices),
        eps=args.eps,
        norms=args.norm,
        problems=args.problem,
        dataset=args.data,
        data_dir=args.data_dir,
        targets=args.target,
        time_limit=args.time_limit,
        threads=args.threads,
        pgd=not args.no_pgd,
        pgd_steps=args.pgd_steps,
        pgd_restarts=args.pgd_restarts,
        bound_method=args.bounds,
        method=args.method,
    )
    s = run_batch(
        spec,
        args.db,
        jobs=args.jobs,
        dask_address=args.dask,
        progress=not args.no_progress,
        dask_timeout=args.dask_timeout,
    )
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(s.verdicts.items())) or "none"
    print(
        f"{s.planned} instances: {s.skipped} already stored, {s.done} solved now ({verdicts}), "
        f"{len(s.errors)} failed; {s.wall_time:.1f} s on {s.workers} {s.executor} worker(s)"
    )
    if s.errors:
        print(f"nn2mip: {len(s.errors)} instance(s) failed; rerun to retry them", file=sys.stderr)
        return 1
    return 0
