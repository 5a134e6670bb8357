"""``nn2mip report``: CSV, Markdown summary and plots from an ``nn2mip attack`` results file."""

from __future__ import annotations

import argparse

from nn2mip.cli.common import check_input_file, check_output_dir


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="summarize an attack results file (CSV, Markdown, plots)",
        description="Write results.csv, summary.md, cactus.png and one scatter plot per "
        "dense/pruned pair from a results file of 'nn2mip attack'.",
    )
    p.add_argument("db", help="SQLite results file written by 'nn2mip attack'")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument(
        "--pair",
        nargs=2,
        action="append",
        metavar=("DENSE", "PRUNED"),
        help="compare these two models (id or path); repeatable; default: automatic",
    )
    return p


def run(args: argparse.Namespace) -> int:
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from adversarial.report import build_report
    from adversarial.store import check_store

    check_input_file(args.db, "results file")
    check_store(args.db)
    check_output_dir(args.out, "--out")
    rep = build_report(args.db, args.out, [tuple(p) for p in args.pair] if args.pair else None)
    for m in rep.models:
        print(
            f"{m.model_id:20s} {m.shape:16s} {m.decided}/{m.instances} decided, "
            f"median {m.median_time:.3f} s"
        )
    for p in rep.pairs:
        sp = "-" if p.median_speedup is None else f"{p.median_speedup:.2f}x"
        print(f"{p.dense} vs {p.pruned}: median speedup {sp} over {p.both_solved} instances")
    for f in rep.files:
        print(f"wrote {f}")
    return 0
