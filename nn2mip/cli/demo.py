"""``nn2mip demo``: train, prune, encode and attack on the embedded digits data."""

from __future__ import annotations

import argparse
import sys

from nn2mip.cli.common import (
    Progress,
    check_output_dir,
    nonneg_float,
    positive_float,
    positive_int,
    print_json,
)
from nn2mip.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="train a dense and a pruned net, attack both, compare",
        description="Train a dense MLP on the embedded 8x8 digits, prune and compact a copy, "
        "run the same untargeted L-inf attacks (PGD, then a MIP) on both, and print the "
        "solve-time gain.",
    )
    p.add_argument("--quick", action="store_true", help="4 images, fewer epochs (< 1 minute)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--eps", type=nonneg_float, default=0.05, help="L-inf radius")
    p.add_argument(
        "--images",
        type=positive_int,
        default=None,
        help="number of test images (default 10, 4 with --quick)",
    )
    p.add_argument("--time-limit", type=positive_float, default=60.0, help="seconds per instance")
    p.add_argument("--threads", type=positive_int, default=1, help="HiGHS threads")
    p.add_argument("--save-dir", default=None, help="write dense/pruned models here")
    return p


def run(args: argparse.Namespace) -> int:
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.cli.demo_flow import DemoConfig, format_report, run_demo
    from nn2mip.datasets import load_digits

    if args.save_dir is not None:
        check_output_dir(args.save_dir, "--save-dir")
    cfg = DemoConfig(time_limit=args.time_limit, threads=args.threads, eps=args.eps)
    if args.quick:
        cfg.num_images, cfg.epochs, cfg.finetune_epochs = 4, 20, 10
    if args.images is not None:
        cfg.num_images = args.images
    n_test = len(load_digits().y_test)
    if cfg.num_images > n_test:
        raise InvalidInputError(
            f"--images {cfg.num_images} exceeds the {n_test} test images of the digits data"
        )
    cfg.validate(n_test)
    quiet = args.quiet
    say = Progress(quiet)

    def progress(name: str, i: int, r) -> None:  # noqa: ANN001
        if not quiet:
            print(
                f"  {name:6s} image {i:4d}: {r.verdict:11s} {r.total_time:7.3f} s", file=sys.stderr
            )

    rep = run_demo(cfg, save_dir=args.save_dir, progress=progress, say=say)
    if args.json:
        print_json(rep.as_dict())
    else:
        print(format_report(rep))
    return 0
