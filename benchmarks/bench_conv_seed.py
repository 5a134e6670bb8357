"""Seed protocol on MNIST CNNs (issue 21), training stage: dense vs filter-pruned.

Trains the issue's CNN (two conv layers of 16 and 32 filters, 4x4, stride 2, padding 1, one
hidden linear layer of 100) on MNIST, prunes whole filters (lowest L2 norm, gradually, with
fine-tuning) and hidden neurons, compacts the result, and keeps the most pruned candidate
whose test accuracy is within ``--tolerance`` points of the dense net's. Both nets are saved
as ``.safetensors`` (architecture in the header, no pickles) under
``benchmarks/out/conv_seed/`` with a ``results.json`` of accuracies, shapes, ReLUs, nonzeros
and the interval-stable ReLU fraction over an L-inf ball; every stage is cached, so a rerun
only does what is missing. The MIP stage (the seed's L1 problem on 20 test images, binaries,
decided, median speed-up) is added once convolutions reach the network IR.

    nice python benchmarks/bench_conv_seed.py                     # ~minutes on one core
    nice python benchmarks/bench_conv_seed.py --train-limit 20000 --epochs 2
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nn2mip.mnist import load_mnist  # noqa: E402
from pruning.compact_conv import (  # noqa: E402
    compact_cnn,
    conv_channels,
    count_parameters_nonzero,
    load_cnn,
    save_cnn,
)
from pruning.filters import cnn_stable_fraction, filter_prune, filter_sparsity  # noqa: E402
from pruning.masks import apply_masks  # noqa: E402
from pruning.structured import neuron_masks  # noqa: E402
from pruning.training import accuracy, make_cnn, train  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "conv_seed"
SHAPE = (1, 28, 28)


def log(msg: str) -> None:
    """Progress line with a timestamp, flushed."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32])
    p.add_argument("--hidden", type=int, nargs="+", default=[100])
    p.add_argument("--epochs", type=int, default=3, help="dense training epochs")
    p.add_argument("--finetune-epochs", type=int, default=1, help="per pruning step")
    p.add_argument("--steps", type=int, default=2, help="gradual pruning steps")
    p.add_argument(
        "--amounts", type=float, nargs="+", default=[0.75, 0.5], help="filter fractions to try"
    )
    p.add_argument("--neuron-amount", type=float, default=0.5, help="hidden-neuron fraction")
    p.add_argument("--tolerance", type=float, default=0.5, help="accuracy points below dense")
    p.add_argument("--train-limit", type=int, default=None, help="first N training images")
    p.add_argument("--eps", type=float, default=0.02, help="L-inf radius for the stable share")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(OUT))
    return p.parse_args(argv)


def describe(model: torch.nn.Module, xte: np.ndarray, yte: np.ndarray, eps: float) -> dict:
    """Accuracy and size of a CNN: conv channels, hidden widths, ReLUs, nonzero weights."""
    relus = 0
    x = torch.zeros((1, *SHAPE), dtype=next(model.parameters()).dtype)
    with torch.no_grad():
        for m in model:
            x = m(x)
            if isinstance(m, torch.nn.ReLU):
                relus += x.numel()
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    return {
        "test_acc": round(100 * accuracy(model, xte, yte), 2),
        "channels": conv_channels(model),
        "hidden": [m.out_features for m in lins[:-1]],
        "relus": relus,
        "nonzeros": count_parameters_nonzero(model),
        "stable_linf": round(cnn_stable_fraction(model, xte[:200], eps), 4),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xtr, ytr = load_mnist(args.data_dir, "train", args.train_limit)
    xte, yte = load_mnist(args.data_dir, "test")
    xtr, xte = xtr.reshape(-1, *SHAPE), xte.reshape(-1, *SHAPE)
    tag = f"c{'-'.join(map(str, args.channels))}_h{'-'.join(map(str, args.hidden))}_s{args.seed}"
    dense_file = out / f"dense_{tag}_e{args.epochs}.safetensors"
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}

    if dense_file.is_file():
        dense, _, _ = load_cnn(dense_file)
        log(f"dense net from {dense_file}")
    else:
        t0 = time.perf_counter()
        dense = make_cnn(SHAPE, args.channels, args.hidden, 10, seed=args.seed)
        for e in range(args.epochs):
            train(dense, xtr, ytr, 1, lr=args.lr, batch_size=args.batch_size, seed=args.seed + e)
            log(f"dense epoch {e + 1}/{args.epochs}: test {100 * accuracy(dense, xte, yte):.2f}")
        save_cnn(dense, dense_file, SHAPE, meta={"train_time": f"{time.perf_counter() - t0:.1f}"})
    row = describe(dense, xte, yte, args.eps)
    results[f"dense_{tag}_e{args.epochs}"] = {**row, "file": dense_file.name}
    log(f"dense: {row}")
    dense_acc = row["test_acc"]

    chosen = None
    for amount in sorted(args.amounts, reverse=True):
        name = (
            f"filters_{tag}_e{args.epochs}_a{amount}_n{args.neuron_amount}"
            f"_st{args.steps}_f{args.finetune_epochs}"
        )
        path = out / f"{name}.safetensors"
        if path.is_file():
            small, _, _ = load_cnn(path)
        else:
            t0 = time.perf_counter()
            model = copy.deepcopy(dense)
            lin_masks = neuron_masks(model, args.neuron_amount)
            apply_masks(model, lin_masks)
            model, masks = filter_prune(
                model,
                xtr,
                ytr,
                amount,
                steps=args.steps,
                finetune_epochs=args.finetune_epochs,
                lr=args.lr / 2,
                seed=args.seed,
                linear_masks=lin_masks,
                batch_size=args.batch_size,
                callback=lambda r, m: log(f"  step {r}: {100 * filter_sparsity(m):.0f}% filters"),
            )
            small = compact_cnn(model, SHAPE)
            with torch.no_grad():  # the compacted net must give the masked net's outputs
                probe = torch.as_tensor(xte[:64], dtype=torch.float32)
                gap = float((small(probe) - model(probe)).abs().max())
            meta = {"train_time": f"{time.perf_counter() - t0:.1f}", "compact_gap": f"{gap:.2e}"}
            save_cnn(small, path, SHAPE, meta=meta)
        row = describe(small, xte, yte, args.eps)
        results[name] = {**row, "file": path.name, "amount": amount}
        log(f"{name}: {row}")
        results_file.write_text(json.dumps(results, indent=1))
        if row["test_acc"] >= dense_acc - args.tolerance:
            chosen = name
            break
    results[f"chosen_{tag}_e{args.epochs}"] = chosen
    results_file.write_text(json.dumps(results, indent=1))
    log(f"chosen: {chosen} (dense {dense_acc:.2f}); results in {results_file}")


if __name__ == "__main__":
    main()
