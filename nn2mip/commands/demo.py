"""``nn2mip demo``: train, prune, encode and attack on the embedded digits data."""

from __future__ import annotations

import argparse
import sys

from nn2mip.commands.common import nonneg_float, positive_float, print_json


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="train a dense and a pruned net, attack both, compare")
    p.add_argument("--quick", action="store_true", help="fewer images and epochs (< 1 minute)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--eps", type=nonneg_float, default=None, help="L-inf radius (default 0.05)")
    p.add_argument("--images", type=int, default=None, help="number of test images")
    p.add_argument("--time-limit", type=positive_float, default=60.0, help="seconds per instance")
    p.add_argument("--threads", type=int, default=1, help="HiGHS threads")
    p.add_argument("--save-dir", default=None, help="write dense/pruned models here")
    return p


def run(args: argparse.Namespace) -> int:
    from nn2mip.demo import DemoConfig, format_report, run_demo

    cfg = DemoConfig(time_limit=args.time_limit, threads=args.threads)
    if args.quick:
        cfg.num_images, cfg.epochs, cfg.finetune_epochs = 4, 20, 10
    if args.eps is not None:
        cfg.eps = args.eps
    if args.images is not None:
        if args.images < 1:
            raise ValueError("--images must be at least 1")
        cfg.num_images = args.images

    def progress(name: str, i: int, r) -> None:  # noqa: ANN001
        if not args.json:
            print(
                f"  {name:6s} image {i:4d}: {r.verdict:11s} {r.total_time:7.3f} s", file=sys.stderr
            )

    rep = run_demo(cfg, save_dir=args.save_dir, progress=progress)
    if args.json:
        print_json(rep.as_dict())
    else:
        print(format_report(rep))
    return 0
