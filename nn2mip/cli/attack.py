"""``nn2mip attack``: batch adversarial search over models x inputs x eps x norms x problems."""

from __future__ import annotations

import argparse
import re
import sys

from adversarial.methods import METHODS, NORMS, PROBLEMS
from nn2mip.bounds_base import DEFAULT_BOUND_METHOD
from nn2mip.cli.common import (
    DATASETS,
    check_bounds,
    check_data,
    check_model_file,
    check_output_file,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
)
from nn2mip.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "attack",
        help="batch adversarial search (PGD, then MIP) into an SQLite results file",
        description="Every combination of MODEL, --indices, --eps, --norm and --problem is one "
        "instance. Finished instances are stored in --db as they complete; rerunning the same "
        "command finishes only the missing ones.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="model files (.safetensors, .onnx)")
    p.add_argument("--data", choices=DATASETS, default="digits", help="data set")
    p.add_argument(
        "--data-dir", default=None, help="directory of the MNIST IDX files (default: searched)"
    )
    p.add_argument("--indices", default="0-9", help="test inputs: 0-9, 0,3,5 or 0-4,7")
    p.add_argument("--eps", type=nonneg_float, nargs="+", default=[0.05], help="radii")
    p.add_argument("--norm", nargs="+", choices=NORMS, default=["inf"], help="ball norms")
    p.add_argument(
        "--problem",
        nargs="+",
        choices=PROBLEMS,
        default=["untargeted"],
        help="untargeted, targeted, seed (runner-up vs predicted, early stop), min-distortion "
        "(eps is then the largest radius searched)",
    )
    p.add_argument(
        "--target",
        type=nonneg_int,
        nargs="+",
        default=None,
        help="classes for targeted (default: every class but the label)",
    )
    p.add_argument("--time-limit", type=positive_float, default=60.0, help="seconds per instance")
    p.add_argument("--threads", type=positive_int, default=1, help="HiGHS threads per instance")
    p.add_argument("--jobs", type=positive_int, default=1, help="instances solved in parallel")
    p.add_argument("--db", required=True, help="SQLite results file (created or resumed)")
    p.add_argument(
        "--dask", default=None, metavar="ADDRESS", help="Dask scheduler address, or 'local'"
    )
    p.add_argument(
        "--dask-timeout", type=positive_float, default=10.0, help="seconds to reach --dask"
    )
    p.add_argument("--no-pgd", action="store_true", help="skip the PGD attack (MIP only)")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="mip",
        help="targeted and seed problems on inf-norm balls: MIP, branch and bound then MIP "
        "(auto), or branch and bound only",
    )
    p.add_argument("--pgd-steps", type=positive_int, default=40, help="PGD steps per restart")
    p.add_argument("--pgd-restarts", type=positive_int, default=8, help="PGD random restarts")
    p.add_argument(
        "--bounds",
        default=DEFAULT_BOUND_METHOD,
        help="interval, symbolic, alpha, lp or mip (the last three: at most half of --time-limit)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (as --quiet)")
    return p


def run(args: argparse.Namespace) -> int:
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from adversarial.batch import BatchSpec, parse_indices, run_batch
    from adversarial.store import check_store

    # Everything checkable is checked before the results file is touched or a model solved.
    for m in args.models:
        check_model_file(m)
    _check_index_ranges(args.indices)
    indices = parse_indices(args.indices)
    check_bounds(args.bounds)
    data_dir = check_data(args.data, args.data_dir)
    check_output_file(args.db, "--db")
    check_store(args.db)
    if "min-distortion" in args.problem and any(e <= 0 for e in args.eps):
        raise InvalidInputError("min-distortion needs --eps > 0 (the largest radius searched)")
    if args.target is not None:
        _check_targets(args, indices, data_dir)
    spec = BatchSpec(
        models=args.models,
        indices=indices,
        eps=args.eps,
        norms=args.norm,
        problems=args.problem,
        dataset=args.data,
        data_dir=data_dir,
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
        progress=not (args.no_progress or args.quiet),
        dask_timeout=args.dask_timeout,
    )
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(s.verdicts.items())) or "none"
    print(
        f"{s.planned} instances: {s.skipped} already stored, {s.done} solved now ({verdicts}), "
        f"{len(s.errors)} failed; {s.wall_time:.1f} s on {s.workers} {s.executor} worker(s)"
    )
    if s.errors:
        print(
            f"nn2mip: error: {len(s.errors)} instance(s) failed (first: {s.errors[0]}); rerun "
            "to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


# Far above any test set; a range beyond it would only fill memory before being refused.
MAX_INDEX = 10_000_000


def _check_index_ranges(text: str) -> None:
    for number in re.findall(r"\d+", text):
        if int(number) > MAX_INDEX:
            raise InvalidInputError(
                f"--indices {text}: index {number} is beyond any test set (at most {MAX_INDEX})"
            )


def _check_targets(args: argparse.Namespace, indices: list[int], data_dir: str | None) -> None:
    """--target only feeds targeted and min-distortion; a target equal to an input's label is
    skipped, so if every target is every chosen input's label nothing would run."""
    if set(args.problem) - {"targeted", "min-distortion"}:
        return
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.datasets import load_dataset

    data = load_dataset(args.data, data_dir)
    n = len(data.y_test)
    labels = {int(data.y_test[i]) for i in indices if 0 <= i < n}
    if labels and not set(args.target) - labels:
        raise InvalidInputError(
            f"nothing to run: --target {' '.join(map(str, args.target))} is the label of every "
            "chosen input, and an input is never attacked toward its own label"
        )
