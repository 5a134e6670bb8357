"""Benchmark of the pruning catalogue: what each method removes from the MIP, and what that buys.

For each method, at the largest tried amount whose test accuracy is within ``--tolerance`` points
of the dense model's: hidden neurons and nonzero weights left (after compaction), binaries after
interval bounds over the L-inf ball, median MIP time of the untargeted attack on the same test
images, and the speedup over dense. Results go to a JSON store as each method finishes (a rerun
with ``--resume`` skips finished methods) and a Markdown table goes into the lab notes
(docs/notes/benchmarks-history.md).

    python benchmarks/bench_pruning.py --quick                        # digits, ~minutes
    python benchmarks/bench_pruning.py --data mnist --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adversarial.problems import untargeted_attack  # noqa: E402
from nn2mip.datasets import load_dataset  # noqa: E402
from nn2mip.torch_io import from_torch  # noqa: E402
from pruning.catalogue import MethodConfig, run_method  # noqa: E402
from pruning.compact import compact_network  # noqa: E402
from pruning.methods import FROM_SCRATCH, METHODS  # noqa: E402
from pruning.regularizers import relu_stability_regularizer  # noqa: E402
from pruning.training import accuracy, make_mlp, train  # noqa: E402

HEADING = "## Pruning methods (issue 3)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="digits, 64-64-64-10, 5 images")
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 100])
    p.add_argument("--epochs", type=int, default=8, help="dense / from-scratch training epochs")
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--amounts", type=float, nargs="+", default=[0.9, 0.7, 0.5])
    p.add_argument("--tolerance", type=float, default=0.5, help="accuracy points below dense")
    p.add_argument("--methods", nargs="+", default=[*METHODS, "stability"])
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--eps", type=float, default=0.02)
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance")
    p.add_argument("--stability-weight", type=float, default=0.5)
    p.add_argument("--spr-lambda", type=float, default=0.05, help="SPR strength")
    p.add_argument("--lam", type=float, default=1e-3, help="L1 / group-lasso strength")
    p.add_argument("--store", default=None, help="JSON results store (default benchmarks/...)")
    p.add_argument("--resume", action="store_true", help="skip methods already in the store")
    p.add_argument(
        "--table-only", action="store_true", help="write the table from the store, run nothing"
    )
    # The catalogue table is in the lab notes, not on the results page.
    p.add_argument("--markdown", default=str(ROOT / "docs" / "notes" / "benchmarks-history.md"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.data, args.hidden, args.images = "digits", [64, 64], min(args.images, 5)
        args.epochs, args.finetune_epochs = 20, 8
    return args


def mip_rows(net, data, idx, args) -> dict[str, float]:  # noqa: ANN001
    """Median binaries and times of the untargeted attack over the chosen images."""
    res = [
        untargeted_attack(
            net,
            data.x_test[i],
            int(data.y_test[i]),
            args.eps,
            "inf",
            time_limit=args.time_limit,
            threads=1,
        )
        for i in idx
    ]
    return {
        "binaries": float(np.median([r.stats.binaries for r in res])),
        "median_time": float(np.median([r.total_time for r in res])),
        "timeouts": sum(r.verdict == "timeout" for r in res),
        "robust": sum(r.verdict == "robust" for r in res),
        "adversarial": sum(r.verdict == "adversarial" for r in res),
    }


def describe(net) -> dict[str, object]:  # noqa: ANN001
    return {"shape": net.describe(), "neurons": net.num_hidden_neurons, "nonzeros": net.num_weights}


def run_one(method, dense, data, dense_acc, cfg, args):  # noqa: ANN001, ANN201
    """Try the amounts from the largest down; keep the first within tolerance of dense."""
    tried = []
    for amount in sorted(args.amounts, reverse=True):
        t0 = time.perf_counter()
        if method in FROM_SCRATCH:
            model = make_mlp(data.num_features, args.hidden, data.num_classes, seed=args.seed)
        else:
            model = copy.deepcopy(dense)
        model, _ = run_method(model, data.x_train, data.y_train, method, amount, cfg)
        acc = accuracy(model, data.x_test, data.y_test)
        tried.append((amount, acc, model, time.perf_counter() - t0))
        print(f"  {method} amount={amount}: acc={acc:.4f} ({tried[-1][3]:.1f} s)", flush=True)
        if acc >= dense_acc - args.tolerance / 100:
            return amount, acc, model, True, tried[-1][3]
    amount, acc, model, secs = max(tried, key=lambda t: t[1])
    return amount, acc, model, False, secs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    store = Path(args.store or ROOT / "benchmarks" / f"results_pruning_{args.data}.json")
    keep = (args.resume or args.table_only) and store.is_file()
    done = json.loads(store.read_text()) if keep else {}
    if args.table_only:
        if "dense" not in done:
            raise SystemExit(f"no dense result in {store}; run the benchmark first")
        idx = list(range(int(done["dense"].get("images", args.images))))
        write_markdown(Path(args.markdown), done, args, done["dense"]["accuracy"], idx)
        return 0
    data = load_dataset(args.data, args.data_dir if args.data == "mnist" else None)
    cfg = MethodConfig(
        finetune_epochs=args.finetune_epochs,
        epochs=args.epochs,
        seed=args.seed,
        spr_lambda=args.spr_lambda,
        lam=args.lam,
    )
    t0 = time.perf_counter()
    dense = make_mlp(data.num_features, args.hidden, data.num_classes, seed=args.seed)
    train(dense, data.x_train, data.y_train, args.epochs, lr=cfg.lr, seed=args.seed)
    dense_acc = accuracy(dense, data.x_test, data.y_test)
    dense_net = from_torch(dense)
    print(
        f"dense {dense_net.describe()} acc={dense_acc:.4f} ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    ok = np.flatnonzero(dense_net.predict(data.x_test) == data.y_test)
    idx = [int(i) for i in ok[: args.images]]
    if "dense" not in done:
        done["dense"] = {
            "amount": 0.0,
            "accuracy": dense_acc,
            "matched": True,
            "images": len(idx),
            "command": command_line(),
            **describe(dense_net),
            **mip_rows(dense_net, data, idx, args),
        }
        store.write_text(json.dumps(done, indent=1))
    for method in args.methods:
        if method in done:
            continue
        if method == "stability":
            t1 = time.perf_counter()
            model = make_mlp(data.num_features, args.hidden, data.num_classes, seed=args.seed)
            train(
                model,
                data.x_train,
                data.y_train,
                args.epochs,
                lr=cfg.lr,
                seed=args.seed,
                regularizer=relu_stability_regularizer(args.stability_weight, args.eps),
            )
            acc = accuracy(model, data.x_test, data.y_test)
            amount, matched, secs = (
                0.0,
                acc >= dense_acc - args.tolerance / 100,
                time.perf_counter() - t1,
            )
        else:
            amount, acc, model, matched, secs = run_one(method, dense, data, dense_acc, cfg, args)
        net = compact_network(from_torch(model))
        row = {
            "amount": amount,
            "accuracy": acc,
            "matched": bool(matched),
            "train_seconds": secs,
            "command": command_line(),
            **describe(net),
            **mip_rows(net, data, idx, args),
        }
        done[method] = row
        store.write_text(json.dumps(done, indent=1))  # finished work survives an interruption
        print(f"{method}: {row}", flush=True)
    write_markdown(Path(args.markdown), done, args, dense_acc, idx)
    return 0


def command_line() -> str:
    """The command that produced the numbers (``--table-only`` only re-renders them)."""
    argv = [a for a in sys.argv[1:] if a != "--table-only"]
    return "python benchmarks/bench_pruning.py " + " ".join(shlex.quote(a) for a in argv)


def write_markdown(
    path: Path, done: dict, args: argparse.Namespace, dense_acc: float, idx: list[int]
) -> None:
    """Replace (or add) this data set's subsection of the issue-3 section of BENCHMARKS.md."""
    cmd = done["dense"].get("command") or command_line()
    base = done["dense"]["median_time"]
    sub = f"### {args.data}"
    lines = [
        sub,
        "",
        f"Command: `{cmd}`",
        "",
        f"Data: {args.data}, MLP {'-'.join(map(str, args.hidden))} hidden, dense test accuracy "
        f"{dense_acc:.4f}. Untargeted L-inf attack at eps {args.eps} on {len(idx)} test images "
        f"(the first the dense net classifies correctly), interval bounds, HiGHS 1 thread, "
        f"time limit {args.time_limit:.0f} s per image. Each method tries amounts "
        f"{sorted(args.amounts, reverse=True)} and keeps the largest within {args.tolerance} "
        'accuracy points of dense ("matched"); when none does, the most accurate try is '
        "shown with matched = no. Sizes are after `compact`; speedup = dense median MIP time "
        '/ method median MIP time (per instance: bounds, build and solve); ">=" when the '
        "dense median hit the time limit.",
        "",
        "| method | amount | test acc | matched | shape | neurons | nonzeros | binaries (med) "
        "| MIP s (med) | speedup | robust/adv/timeout |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    reruns: dict[str, list[str]] = {}
    for name, r in done.items():
        if r.get("command", cmd) != cmd:
            reruns.setdefault(r["command"], []).append(name)
    for other, names in reruns.items():
        lines[4:4] = [f"Rows {', '.join(names)} come from: `{other}`", ""]
    n_img = done["dense"].get("images", len(idx))
    # A dense median at the time limit makes every speedup a lower bound.
    lower = ">=" if 2 * done["dense"]["timeouts"] > n_img else ""
    for name, r in done.items():
        speed = base / max(r["median_time"], 1e-9)
        lines.append(
            f"| {name} | {r['amount']:.2f} | {r['accuracy']:.4f} | "
            f"{'yes' if r['matched'] else 'no'} | {r['shape']} | {r['neurons']} | "
            f"{r['nonzeros']} | {r['binaries']:.0f} | {r['median_time']:.3f} | "
            f"{lower}{speed:.2f}x | "
            f"{r['robust']}/{r['adversarial']}/{r['timeouts']} |"
        )
    block = "\n".join(lines) + "\n"
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if HEADING not in text:
        text = text.rstrip("\n") + "\n\n" + HEADING + "\n\n"
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    end = len(text) if end < 0 else end + 1
    section = text[start:end]
    if f"\n{sub}\n" in section:
        a = section.index(f"\n{sub}\n") + 1
        b = section.find("\n### ", a + len(sub))
        b = len(section) if b < 0 else b + 1
        section = section[:a] + block + ("\n" if b < len(section) else "") + section[b:]
    else:
        section = section.rstrip("\n") + "\n\n" + block
    if not section.endswith("\n\n") and end < len(text):
        section += "\n"
    path.write_text(text[:start] + section + text[end:])


if __name__ == "__main__":
    sys.exit(main())
