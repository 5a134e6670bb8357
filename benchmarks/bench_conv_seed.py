"""Seed protocol on MNIST CNNs (issue 21), training stage: dense vs filter-pruned.

Trains the issue's CNN (two conv layers of 16 and 32 filters, 4x4, stride 2, padding 1, one
hidden linear layer of 100) on MNIST, prunes whole filters (lowest L2 norm, gradually, with
fine-tuning) and hidden neurons, compacts the result, and keeps the most pruned candidate
whose test accuracy is within ``--tolerance`` points of the dense net's. Both nets are saved
as ``.safetensors`` (architecture in the header, no pickles) under
``benchmarks/out/conv_seed/`` with a ``results.json`` of accuracies, shapes, ReLUs, nonzeros
and the interval-stable ReLU fraction over an L-inf ball; every stage is cached, so a rerun
only does what is missing.

The MIP stage (``--images N``) imports both nets with ``nn2mip.torch_io.from_torch`` (sparse
conv maps) and, for the first N test images, solves the seed's problem
(``adversarial.seed.seed_attack``: L1 ball of radius 5 in [0, 1], maximize y[second] -
y[predicted], sign stop) with the MIP and the default bounds, and with ``--engines mip auto``
also the full engine (``adversarial.pipeline.verify`` with method "auto"). Per-instance rows
(verdict, time, binaries, nonzeros) are appended to ``mip_rows.jsonl`` (resumable); the summary
goes to ``mip_results.json`` and the dense-vs-pruned Markdown table to ``mip_table.md``.

    nice python benchmarks/bench_conv_seed.py                     # ~minutes on one core
    nice python benchmarks/bench_conv_seed.py --train-limit 20000 --epochs 2
    nice python benchmarks/bench_conv_seed.py --epochs 5 --steps 3 --images 10 --time-limit 60
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

from adversarial.pipeline import verify  # noqa: E402
from adversarial.problems import attack_result  # noqa: E402
from adversarial.query import seed_query  # noqa: E402
from adversarial.seed import seed_attack  # noqa: E402
from nn2mip.mnist import load_mnist  # noqa: E402
from nn2mip.network import Network  # noqa: E402
from nn2mip.torch_io import from_torch  # noqa: E402
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
DELTA = 5.0  # the seed's L1 radius
SOLVED = ("adversarial", "robust")


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
    p.add_argument("--images", type=int, default=0, help="MIP stage on the first N test images")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per MIP instance")
    p.add_argument(
        "--engines", nargs="+", default=["mip"], choices=["mip", "auto"], help="MIP stage engines"
    )
    p.add_argument(
        "--stop-after",
        type=float,
        default=None,
        help="start no new MIP instance after this many seconds; the table pairs what finished",
    )
    args = p.parse_args(argv)
    if args.images < 0 or args.time_limit <= 0:
        p.error("--images must be >= 0 and --time-limit > 0")
    return args


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
    if args.images and chosen is not None:
        nets = {"dense": (f"dense_{tag}_e{args.epochs}", dense_file), "pruned": (chosen, None)}
        mip_stage(args, out, xte, results, nets)


def solve_one(
    network: Network, model: torch.nn.Module, x0: np.ndarray, engine: str, time_limit: float
) -> dict:
    """One seed instance with ``engine`` ("mip": ``seed_attack``; "auto": the full engine on
    the same query); the witness of an "adversarial" verdict is re-checked by both paths."""
    t0 = time.perf_counter()
    if engine == "mip":
        res = seed_attack(network, x0, DELTA, "1", time_limit=time_limit, torch_model=model)
    else:
        q = seed_query(network, x0, DELTA, "1", (0.0, 1.0))
        v = verify(network, q, time_limit, method="auto", torch_model=model)
        assert q.label is not None
        res = attack_result(v, q.label, q.target, DELTA, "1", time.perf_counter() - t0)
    if res.verdict == "adversarial" and (res.check is None or not res.check.passed):
        raise RuntimeError(f"adversarial witness failed its forward-pass re-check: {res.check}")
    stats = res.stats.as_dict()
    return {
        "verdict": res.verdict,
        "label": res.label,
        "target": res.target,
        "time": res.total_time,
        "decided_by": res.decided_by,
        "binaries": stats.get("binaries"),
        "nonzeros": stats.get("nonzeros"),
        "witness_checked": res.check is not None,
    }


def summarize(rows: list[dict], time_limit: float) -> dict:
    """Mean / median time (undecided instances count at the limit), decided count and the
    median binaries and nonzeros over the instances that built a formulation."""
    t = [min(r["time"], time_limit) if r["verdict"] in SOLVED else time_limit for r in rows]
    built = [r for r in rows if r.get("binaries") is not None]
    med = (lambda k: float(np.median([r[k] for r in built]))) if built else (lambda k: None)
    return {
        "n": len(rows),
        "decided": sum(r["verdict"] in SOLVED for r in rows),
        "adversarial": sum(r["verdict"] == "adversarial" for r in rows),
        "mean_time": float(np.mean(t)),
        "median_time": float(np.median(t)),
        "binaries": med("binaries"),
        "nonzeros": med("nonzeros"),
        "times": t,
    }


def _count(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def mip_stage(
    args: argparse.Namespace,
    out: Path,
    xte: np.ndarray,
    results: dict,
    nets: dict[str, tuple[str, Path | None]],
) -> None:
    """The seed's problem on the first ``args.images`` test images for the dense and the chosen
    pruned net, each engine; image-major so a partial run still pairs dense and pruned."""
    rows_file = out / "mip_rows.jsonl"
    done: dict[tuple, dict] = {}
    if rows_file.is_file():
        for line in rows_file.read_text().splitlines():
            r = json.loads(line)
            done[(r["name"], r["engine"], r["index"], r["time_limit"])] = r
    loaded = {}
    for role, (name, _) in nets.items():
        model, shape, _ = load_cnn(out / results[name]["file"])
        model = model.double()  # the IR is float64
        # the witness re-check feeds flat inputs, as the IR takes them
        flat_in = torch.nn.Sequential(torch.nn.Unflatten(1, shape), *model).eval()
        loaded[role] = (name, flat_in, from_torch(model, input_shape=shape))
    rows: dict[tuple[str, str], list[dict]] = {}
    t_start = time.perf_counter()
    for engine in args.engines:
        for i in range(args.images):
            for role, (name, model, network) in loaded.items():
                key = (name, engine, i, args.time_limit)
                late = (
                    args.stop_after is not None and time.perf_counter() - t_start > args.stop_after
                )
                if key not in done and late:
                    continue
                if key not in done:
                    row = solve_one(network, model, xte[i].reshape(-1), engine, args.time_limit)
                    done[key] = {
                        "name": name,
                        "engine": engine,
                        "index": i,
                        "time_limit": args.time_limit,
                        **row,
                    }
                    with rows_file.open("a") as f:
                        f.write(json.dumps(done[key]) + "\n")
                    log(
                        f"{engine} {role} #{i}: {row['verdict']} {row['time']:.1f}s "
                        f"binaries={row['binaries']} nonzeros={row['nonzeros']}"
                    )
                rows.setdefault((engine, role), []).append(done[key])
    summary = {"images": args.images, "time_limit": args.time_limit, "delta": DELTA}
    lines = [
        f"First {args.images} MNIST test images (rows: those both nets finished), L1 ball "
        f"delta={DELTA:g} in [0, 1], {args.time_limit:g} s per instance, one thread.\n",
        "| engine | net | test acc | shape (conv / hidden) | ReLUs | binaries (median) | "
        "nonzeros (median) | decided | adversarial | mean / median s | median speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for engine in args.engines:
        # only images both nets finished, so the speed-up is per instance
        both = {r["index"] for r in rows.get((engine, "dense"), [])} & {
            r["index"] for r in rows.get((engine, "pruned"), [])
        }
        if not both:
            continue
        d = summarize([r for r in rows[(engine, "dense")] if r["index"] in both], args.time_limit)
        p = summarize([r for r in rows[(engine, "pruned")] if r["index"] in both], args.time_limit)
        # per-instance ratio; a dense timeout only bounds it from below
        speed = float(np.median(np.array(d["times"]) / np.maximum(p["times"], 1e-3)))
        ge = ">=" if d["decided"] < d["n"] else ""
        summary[engine] = {
            "dense": d,
            "pruned": p,
            "median_speedup": speed,
            "lower_bound": bool(ge),
        }
        for role, s_ in (("dense", d), ("pruned", p)):
            r = results[nets[role][0]]
            lines.append(
                f"| {engine} | {role} | {r['test_acc']:.2f} | {r['channels']} / {r['hidden']} | "
                f"{r['relus']} | {_count(s_['binaries'])} | {_count(s_['nonzeros'])} | "
                f"{s_['decided']}/{s_['n']} | {s_['adversarial']} | "
                f"{s_['mean_time']:.1f} / {s_['median_time']:.1f} | "
                f"{(ge + f'{speed:.1f}x') if role == 'pruned' else ''} |"
            )
    (out / "mip_results.json").write_text(json.dumps(summary, indent=1))
    (out / "mip_table.md").write_text("\n".join(lines) + "\n")
    log("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
