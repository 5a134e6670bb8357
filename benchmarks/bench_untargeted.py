"""Untargeted robustness: one MIP per wrong class (loop) vs one MIP with a class selector.

Trains the demo's dense and pruned digits networks, then runs both strategies on the same
instances, alternating the order per instance so machine noise hits both alike. Writes a
Markdown table into BENCHMARKS.md under "## Untargeted strategy (issue 2)".

    python benchmarks/bench_untargeted.py [--images 20] [--eps 0.05 0.08]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adversarial.problems import untargeted_attack  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from nn2mip.datasets import load_digits  # noqa: E402
from nn2mip.torch_io import from_torch  # noqa: E402
from pruning.compact import compact_network  # noqa: E402
from pruning.pairs import PairConfig, train_pair  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.08])
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_digits()
    cfg = PairConfig()
    dense_t, pruned_t = train_pair(data, cfg)
    nets = {"dense": from_torch(dense_t), "pruned": compact_network(from_torch(pruned_t))}
    ok = np.ones(len(data.y_test), bool)
    for net in nets.values():
        ok &= net.predict(data.x_test) == data.y_test
    idx = np.flatnonzero(ok)[: args.images]
    rows = []
    for name, net in nets.items():
        for eps in args.eps:
            t = {"loop": [], "single": []}
            disagree = 0
            verdicts = {"loop": [], "single": []}
            for n, i in enumerate(idx):
                order = ["loop", "single"] if n % 2 == 0 else ["single", "loop"]
                got = {}
                for strat in order:
                    t0 = time.perf_counter()
                    r = untargeted_attack(
                        net,
                        data.x_test[i],
                        int(data.y_test[i]),
                        eps,
                        "inf",
                        time_limit=args.time_limit,
                        strategy=strat,
                    )
                    t[strat].append(time.perf_counter() - t0)
                    got[strat] = r.verdict
                    verdicts[strat].append(r.verdict)
                disagree += got["loop"] != got["single"]
            ratio = np.median(np.array(t["single"]) / np.array(t["loop"]))
            rows.append(
                f"| {name} {net.describe()} | {eps} | {len(idx)} | "
                f"{verdicts['loop'].count('adversarial')}/{verdicts['loop'].count('robust')} | "
                f"{np.median(t['loop']):.3f} | {np.median(t['single']):.3f} | {ratio:.2f} | "
                f"{disagree} |"
            )
            print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"Command: `python benchmarks/bench_untargeted.py --images {args.images} "
            f"--eps {' '.join(map(str, args.eps))}`",
            "",
            "Digits networks of the demo, L-inf, HiGHS 1 thread, per-instance total time (s).",
            "`single/loop` is the median over instances of the per-instance time ratio.",
            "",
            "| network | eps | instances | adv/robust | loop median | single median "
            "| single/loop | verdicts differ |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    write_section("Untargeted strategy (issue 2)", body)


if __name__ == "__main__":
    main()
