"""Seed experiment (issue 6): prune MNIST MLPs, then time the L1 adversarial MIP before/after.

Stages (each cached under ``benchmarks/out/seed/``, outside git, so reruns are cheap):

1. train the dense nets 784 -> hidden -> 10 (SGD lr 0.1, batch 128, ``--epochs``);
2. prune each one by ``pruning.recipe`` (the seed's SPR pipeline and the best pipeline, the
   recipes of ``data/recipes/``), fine-tune, compact;
3. solve the seed's MIP (max y[2nd class] - y[predicted] over [0,1]^784 within an L1 ball of
   radius 5, stopped once the sign is settled) on the same test images for every network;
4. write "## Seed experiment: MNIST, L1 delta=5 (issue 6)" into BENCHMARKS.md.

    python benchmarks/seed_experiment.py --quick --time-limit 60     # what fits one session
    python benchmarks/seed_experiment.py                               # full: 5 nets, 600 s

Every stage resumes from its cache, so a killed run loses at most the instance in flight.
``--stage`` runs one stage; ``--recipes`` / ``--grid`` / ``--spr-grid`` choose pruning recipes
(``--grid`` points and the cache's file names are the old tags, read by
``pruning.recipe.recipe_from_tag``);
``--engine batch`` (default) solves through ``adversarial.batch`` into an SQLite store, whose
plots come from ``nn2mip report``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adversarial.seed import seed_attack, seed_classes  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from nn2mip.bounds import DEFAULT_BOUND_METHOD, compute_bounds  # noqa: E402
from nn2mip.mnist import load_mnist  # noqa: E402
from nn2mip.network import Network  # noqa: E402
from nn2mip.region import ball_region  # noqa: E402
from nn2mip.serialize import load_network, save_network  # noqa: E402
from nn2mip.torch_io import from_torch, to_torch  # noqa: E402
from pruning.compact import compact_network  # noqa: E402
from pruning.recipe import (  # noqa: E402
    DenseTraining,
    Recipe,
    SeedSprStep,
    StabilityStep,
    legacy_tag,
    load_recipe,
    run_recipe,
    run_seed_spr,
    seed_adversary,
    spr_step_from_tag,
    spr_tag,
    spr_train,
)
from pruning.recipe import train_dense as recipe_train_dense  # noqa: E402
from pruning.regularizers import STABILITY_LOSSES  # noqa: E402
from pruning.training import accuracy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "seed"
MNIST = ROOT.parent / "shared" / "data" / "mnist"
ARCHS: dict[str, list[int]] = {
    "2x50": [50] * 2,
    "2x100": [100] * 2,
    "2x200": [200] * 2,
    "6x100": [100] * 6,
    "6x500": [500] * 6,
}
QUICK = ["2x50", "2x100"]
RESULTS = ROOT / "benchmarks" / "results"


def log(msg: str) -> None:
    """Progress line with a timestamp, flushed."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_data(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST train and test splits, pixels in [0, 1]."""
    xtr, ytr = load_mnist(mnist_dir, "train")
    xte, yte = load_mnist(mnist_dir, "test")
    return xtr, ytr, xte, yte


def dense_path(arch: str, epochs: int, seed: int) -> Path:
    """Cache file of a dense net."""
    return OUT / f"dense_{arch}_e{epochs}_s{seed}.safetensors"


def train_dense(arch: str, epochs: int, seed: int, data: tuple) -> Network:
    """Train (or load from the cache) the dense net of ``arch`` (``pruning.recipe.train_dense``:
    SGD lr 0.1, batch 128)."""
    path = dense_path(arch, epochs, seed)
    if path.is_file():
        return load_network(path)
    xtr, ytr, xte, yte = data
    t0 = time.perf_counter()
    model = recipe_train_dense(DenseTraining(tuple(ARCHS[arch]), epochs), xtr, ytr, seed)
    net = from_torch(model)
    meta = {
        "arch": arch,
        "epochs": str(epochs),
        "train_acc": f"{accuracy(model, xtr, ytr):.4f}",
        "test_acc": f"{accuracy(model, xte, yte):.4f}",
        "train_time": f"{time.perf_counter() - t0:.1f}",
    }
    save_network(net, path, meta=meta)
    log(f"dense {arch}: {meta}")
    return load_network(path)


# ------------------------------------------------------------------------------- pruning
# The pipelines themselves are ``pruning.recipe``'s; this script names and caches their nets
# and searches grids of them. A "best" net is a recipe of one StabilityStep, or of a
# SeedSprStep and a StabilityStep (``_from_spr_`` in its tag); an "spr" net one SeedSprStep.


def grid_recipe(values: str, start: SeedSprStep | None = None, seed: int = 0) -> Recipe:
    """A ``--grid`` point ``"n,w,rs[,decay,finetune,lr,sym,loss,adv]"`` as a recipe (after
    ``start``, the SPR step of ``--best-from spr``); ``ValueError`` when malformed."""
    fields = values.split(",")
    if not 3 <= len(fields) <= 9:
        raise ValueError(values)
    nums = [float(v) for v in fields[:7]]
    n, w, rs, decay, ft, lr, sym = nums + [0.0, 10.0, 0.05, 0.0][len(nums) - 3 :]
    loss = fields[7] if len(fields) > 7 else "tanh"
    if loss not in STABILITY_LOSSES:
        raise ValueError(values)
    adv = float(fields[8]) if len(fields) > 8 else 0.0
    step = StabilityStep(
        neuron_fraction=n,
        weight_fraction=w,
        stability_weight=rs,
        stability_loss=loss,
        stability_bounds="symbolic" if int(sym) > 0 else "interval",
        stability_rows=int(sym),
        finetune_epochs=int(ft),
        lr=lr,
        lr_decay=decay > 0,
        adversarial=seed_adversary(adv) if adv > 0 else None,
    )
    steps = (step,) if start is None else (start, step)
    return Recipe(steps=steps, seed=seed)


def tag(recipe: Recipe) -> str:
    """The recipe's file-name tag (``pruning.recipe.legacy_tag``)."""
    return legacy_tag(recipe)[1]


def pruned_path(arch: str, method: str, tag: str, epochs: int, seed: int) -> Path:
    """Cache file of a pruned, compacted net."""
    return OUT / f"{method}_{arch}_{tag}_e{epochs}_s{seed}.safetensors"


def prune_config(arch: str, epochs: int, seed: int, data: tuple, recipe: Recipe) -> Network:
    """The compacted "best" net of one recipe (cached): from the dense net, or from the SPR net
    of its first step (itself cached, ``spr_point``)."""
    xtr, ytr, xte, yte = data
    kind, name = legacy_tag(recipe)
    path = pruned_path(arch, kind, name, epochs, seed)
    if not path.is_file():
        t0 = time.perf_counter()
        steps = recipe.steps
        start = load_network(dense_path(arch, epochs, seed))
        if isinstance(steps[0], SeedSprStep) and len(steps) > 1:
            start = spr_point(arch, epochs, seed, data, steps[0])
            steps = steps[1:]
        # The experiment's --seed drives every step (the shipped recipes say seed 0 too).
        model = run_recipe(replace(recipe, seed=seed), xtr, ytr, to_torch(start), steps).model
        net = compact_network(from_torch(model))
        small = to_torch(net)
        meta = {
            "arch": arch,
            "method": kind,
            "config": name,
            "train_acc": f"{accuracy(small, xtr, ytr):.4f}",
            "test_acc": f"{accuracy(small, xte, yte):.4f}",
            "prune_time": f"{time.perf_counter() - t0:.1f}",
        }
        save_network(net, path, meta=meta)
        log(f"pruned {arch} {name}: {meta}")
    return load_network(path)


def unstable_profile(
    net: Network, xs: np.ndarray, bound_method: str = DEFAULT_BOUND_METHOD, eps: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``xs``: the unstable neurons of each hidden layer of ``net`` over the L1 ball
    of radius ``eps`` (within [0, 1]) around it, by ``bound_method`` (rows x layers), and the
    seconds the bounds took (rows)."""
    counts, times = [], []
    for x in xs:
        t0 = time.perf_counter()
        bounds = compute_bounds(net, ball_region(x, eps, "1"), bound_method)
        times.append(time.perf_counter() - t0)
        counts.append(bounds.unstable_counts(net)[:-1])  # the output layer has no ReLU
    return np.array(counts), np.array(times)


def unstable_median(
    net: Network, xs: np.ndarray, bound_method: str = DEFAULT_BOUND_METHOD, eps: float = 5.0
) -> float:
    """Median over the rows of ``xs`` of the number of unstable hidden neurons (see
    ``unstable_profile``)."""
    return float(np.median(unstable_profile(net, xs, bound_method, eps)[0].sum(axis=1)))


def candidate_rows(
    arch: str, dense: Network, nets: list[Network], xs: np.ndarray, bound_method: str
) -> list[dict]:
    """Selection data of the pruned candidates (no MIP): shape, train / test accuracy and
    median unstable neurons over the L1 balls around ``xs`` (rows meant to be training
    images, never the MIP's test images)."""
    base = float(dense.meta["test_acc"])
    out = []
    for name, net in [("dense", dense)] + [(n.meta["config"], n) for n in nets]:
        test = float(net.meta["test_acc"])
        out.append(
            {
                "arch": arch,
                "config": name,
                "shape": shape(net),
                "train_acc": float(net.meta["train_acc"]),
                "test_acc": test,
                "test_diff": 100 * (test - base),
                "unstable": unstable_median(net, xs, bound_method),
            }
        )
    return out


def choose_candidate(rows: list[dict], max_test_drop: float = 0.5) -> dict | None:
    """The most stable candidate (fewest median unstable neurons) within ``max_test_drop``
    test points of the dense net; ties go to the smaller accuracy loss."""
    # Accuracies are counts / 10,000: round away float noise (-0.5000000004 is -0.50 points).
    ok = [r for r in rows if r["config"] != "dense" and round(r["test_diff"], 6) >= -max_test_drop]
    return min(ok, key=lambda r: (r["unstable"], -r["test_diff"])) if ok else None


def candidate_table(rows: list[dict], chosen: dict | None) -> str:
    """Markdown rows in the notes' candidate-table form."""
    lines = []
    for r in rows:
        name = f"**{r['config']}**" if r is chosen else r["config"]
        diff = "" if r["config"] == "dense" else f" ({r['test_diff']:+.2f})"
        lines.append(
            f"| {r['arch']} | {name} | {r['shape']} | {100 * r['train_acc']:.2f} | "
            f"{100 * r['test_acc']:.2f}{diff} | {r['unstable']:g} |"
        )
    return "\n".join(lines) + "\n"


def prune_best(
    arch: str, epochs: int, seed: int, data: tuple, max_drop: float, grid: list[Recipe]
) -> Network:
    """Try the grid from most to least aggressive; keep the first whose train accuracy is within
    ``max_drop`` of the dense net's (cached per grid point)."""
    dense = load_network(dense_path(arch, epochs, seed))
    base = float(dense.meta["train_acc"])
    last = None
    for recipe in grid:
        last = prune_config(arch, epochs, seed, data, recipe)
        if base - float(last.meta["train_acc"]) <= max_drop:
            return last
    assert last is not None
    return last


# The seed's lambdas are {0.1, 0.5, 1} in its own scaling; the catalogue's SPR sums the
# penalty over neurons unnormalized, where 0.05 already collapses an MNIST net to a few neurons
# (BENCHMARKS.md, pruning catalogue), so the grid is taken two orders of magnitude lower.
SPR_LAMBDAS = (0.001, 0.005, 0.01)
SPR_ALPHAS = (0.1, 0.5, 0.9)


def spr_point(arch: str, epochs: int, seed: int, data: tuple, step: SeedSprStep) -> Network:
    """The compacted net of one ``SeedSprStep`` from the dense net (cached, and so is the
    SPR-trained net before the threshold, shared by steps that differ after it)."""
    xtr, ytr, xte, yte = data
    name = spr_tag(step)
    path = pruned_path(arch, "spr", name, epochs, seed)
    if path.is_file():
        return load_network(path)
    t0 = time.perf_counter()
    dense = load_network(dense_path(arch, epochs, seed))
    trained_tag = f"{arch}_e{dense.meta.get('epochs')}_s{seed}_{name}"
    cache = OUT / f"sprtrained_{trained_tag}.safetensors"
    if cache.is_file():
        trained = to_torch(load_network(cache))
    else:
        trained = to_torch(dense)
        spr_train(step, trained, xtr, ytr, seed)
        save_network(from_torch(trained), cache)
    model, _ = run_seed_spr(step, to_torch(dense), xtr, ytr, seed, trained=trained)
    net = compact_network(from_torch(model))
    small = to_torch(net)
    meta = {
        "arch": arch,
        "method": "spr",
        "config": name,
        "train_acc": f"{accuracy(small, xtr, ytr):.4f}",
        "test_acc": f"{accuracy(small, xte, yte):.4f}",
        "prune_time": f"{time.perf_counter() - t0:.1f}",
    }
    save_network(net, path, meta=meta)
    log(f"spr {arch} {name}: {meta}")
    return load_network(path)


def prune_spr(
    arch: str,
    epochs: int,
    seed: int,
    data: tuple,
    max_drop: float,
    spr_epochs: int,
    grid: list[tuple[float, float]] | None = None,
) -> Network:
    """SPR over the seed's (lambda, alpha) grid (cached); the smallest compacted net whose train
    accuracy is within ``max_drop`` of the dense one, else the most accurate one."""
    dense = load_network(dense_path(arch, epochs, seed))
    base = float(dense.meta["train_acc"])
    lams = tuple(10 * v for v in SPR_LAMBDAS) if arch == "6x500" else SPR_LAMBDAS
    best: Network | None = None
    fallback: Network | None = None
    for lam, alpha in grid or [(a, b) for a in lams for b in SPR_ALPHAS]:
        step = SeedSprStep(
            spr_lambda=lam, spr_alpha=alpha, spr_epochs=spr_epochs, max_accuracy_drop=max_drop
        )
        net = spr_point(arch, epochs, seed, data, step)
        ok = base - float(net.meta["train_acc"]) <= max_drop
        if ok and (best is None or net.num_hidden_neurons < best.num_hidden_neurons):
            best = net
        if fallback is None or net.meta["train_acc"] > fallback.meta["train_acc"]:
            fallback = net
    assert fallback is not None
    return best or fallback


# Most aggressive first; the first within --max-drop train accuracy is kept. (In the quick
# run, RS 0.5 bought the most MIP speed but cost 2 test points on 2x50; see BENCHMARKS.md.)
GRID_POINTS = ["0.5,0.9,0.5,1", "0.5,0.8,0.2,1", "0.4,0.8,0.2,1", "0.4,0.8,0.1", "0.3,0.7,0.05"]


# ------------------------------------------------------------------------------- MIP runs


def run_mips(
    name: str,
    net: Network,
    xte: np.ndarray,
    indices: list[int],
    time_limit: float,
    bound_method: str,
    store: Path,
    solve: bool = True,
) -> list[dict]:
    """Solve the seed MIP (``adversarial.seed.seed_attack``) for every index (resumable:
    finished rows are kept in ``store``); with ``solve=False`` only the rows already in the
    store are returned."""
    done: dict[tuple, dict] = {}
    if store.is_file():
        for line in store.read_text().splitlines():
            row = json.loads(line)
            done[(row["net"], row["index"], row["time_limit"], row["bound"])] = row
    rows = []
    for i in indices:
        key = (name, i, time_limit, bound_method)
        if key in done:
            rows.append(done[key])
            continue
        if not solve:
            continue
        label, target = seed_classes(net, xte[i])
        res = seed_attack(
            net, xte[i], 5.0, "1", time_limit=time_limit, threads=1, bound_method=bound_method
        )
        row = {
            "net": name,
            "index": i,
            "time_limit": time_limit,
            "bound": bound_method,
            "label": label,
            "target": target,
            "verdict": res.verdict,
            "time": res.total_time,
            "solve_time": res.solve_time,
            "nodes": res.nodes,
            **{k: v for k, v in res.stats.as_dict().items()},
        }
        with store.open("a") as f:
            f.write(json.dumps(row) + "\n")
        log(f"{name} #{i}: {res.verdict} {res.total_time:.1f}s binaries={row['binaries']}")
        rows.append(row)
    return rows


def sqlite_path(time_limit: float, bound_method: str) -> Path:
    """The batch engine's results store for one time limit and bound method."""
    return OUT / f"results_tl{time_limit:g}_{bound_method}.sqlite"


def engine(tag: str) -> dict[str, str | bool]:
    """A ``--bound-method`` tag as solver settings: "alpha" -> alpha bounds and the MIP,
    "alpha+auto" -> alpha bounds and branch and bound before the MIP; a "+pgd" part turns on
    the batch engine's PGD before either (its default, off here so that the times are MIP
    times): "alpha+pgd", "alpha+auto+pgd"."""
    bounds, *parts = tag.split("+")
    methods = [p for p in parts if p != "pgd"]
    if len(methods) > 1 or len(parts) - len(methods) > 1:
        raise SystemExit(f"--bound-method {tag!r} is not BOUNDS[+METHOD][+pgd]")
    return {
        "bound_method": bounds,
        "method": methods[0] if methods else "mip",
        "pgd": "pgd" in parts,
    }


def run_mips_batch(
    name: str,
    path: Path,
    indices: list[int],
    time_limit: float,
    bound_method: str,
    store: Path,
    mnist_dir: Path,
    jobs: int = 1,
) -> list[dict]:
    """The same instances through the batch engine (SQLite store, resumable; PGD only with a
    "+pgd" tag, so that by default the times are MIP times); the rows are mirrored into
    ``store`` for the table."""
    from adversarial.batch import BatchSpec, run_batch

    db = sqlite_path(time_limit, bound_method)
    known = stored_rows(store, time_limit, bound_method).get(name, [])
    if set(indices) <= {r["index"] for r in known}:
        return [r for r in known if r["index"] in set(indices)]
    spec = BatchSpec(
        models=[str(path)],
        indices=indices,
        eps=[5.0],
        norms=["1"],
        problems=["seed"],
        dataset="mnist",
        data_dir=str(mnist_dir),
        time_limit=time_limit,
        threads=1,
        **engine(bound_method),
    )
    # One solve per process either way: jobs > 1 runs that many instances side by side.
    run_batch(spec, db, jobs=jobs, executor="inline" if jobs == 1 else "process", progress=False)
    return mirror_batch_rows(name, path, indices, time_limit, bound_method, store)


def mirror_batch_rows(
    name: str, path: Path, indices: list[int], time_limit: float, bound_method: str, store: Path
) -> list[dict]:
    """Copy the batch engine's rows for the model at ``path`` into ``store`` (once each)."""
    from adversarial.batch import file_sha256
    from adversarial.store import ResultStore, check_store

    db = sqlite_path(time_limit, bound_method)
    if not check_store(db):
        return []
    sha = file_sha256(path)
    with ResultStore(db, readonly=True) as st:
        found = [r for r in st.rows() if r["model_sha256"] == sha]
    have = set()
    if store.is_file():
        for line in store.read_text().splitlines():
            row = json.loads(line)
            have.add((row["net"], row["index"], row["time_limit"], row["bound"]))
    out = []
    with store.open("a") as f:
        for r in sorted(found, key=lambda r: int(r["input_id"])):
            row = {
                "net": name,
                "index": int(r["input_id"]),
                "time_limit": time_limit,
                "bound": bound_method,
                "label": r["label"],
                "target": r["target"],
                "verdict": r["verdict"],
                "time": r["total_time"],
                "solve_time": r["solve_time"],
                "nodes": r["nodes"],
                "binaries": r["binaries"],
                "nonzeros": r["nonzeros"],
                "rows": r["rows"],
                "cols": r["cols"],
                "engine": "batch",
            }
            if (name, row["index"], time_limit, bound_method) not in have:
                f.write(json.dumps(row) + "\n")
            out.append(row)
    return [r for r in out if r["index"] in set(indices)]


def import_direct_rows(store: Path, args: argparse.Namespace) -> int:
    """Copy rows solved by the direct runner into the batch engine's SQLite store, so that
    ``nn2mip report`` sees every network (the same fields the batch engine writes)."""
    from adversarial.batch import file_sha256
    from adversarial.store import ResultStore

    db = sqlite_path(args.time_limit, args.bound_method)
    rows = stored_rows(store, args.time_limit, args.bound_method)
    new = 0
    with ResultStore(db) as st:
        for name, rs in rows.items():
            path = net_file(name, args)
            if path is None or not path.is_file():
                continue
            net = load_network(path)
            sha = file_sha256(path)
            for r in rs:
                if r.get("engine") == "batch":
                    continue
                new += st.add(
                    {
                        "model_path": str(path),
                        "model_id": path.stem,
                        "model_sha256": sha,
                        "model_shape": net.describe(),
                        "model_weights": net.num_weights,
                        "model_accuracy": float(net.meta["test_acc"]),
                        "dataset": "mnist",
                        "input_id": r["index"],
                        "label": r["label"],
                        "eps": 5.0,
                        "norm": "1",
                        "problem": "seed",
                        "target": r["target"],
                        "verdict": r["verdict"],
                        "decided_by": "mip",
                        "solve_time": r["solve_time"],
                        "total_time": r["time"],
                        "binaries": r["binaries"],
                        "rows": r.get("rows"),
                        "cols": r.get("cols"),
                        "nonzeros": r["nonzeros"],
                        "unstable": r.get("unstable"),
                        "nodes": r["nodes"],
                        "time_limit": r["time_limit"],
                        "threads": 1,
                        "note": "seed_experiment direct runner",
                    }
                )
    return new


def nn2mip_report(
    results: list[dict], args: argparse.Namespace, folder: str = "seed_report"
) -> list[str]:
    """``nn2mip report`` on the SQLite store with explicit dense/pruned pairs; its plots are
    copied to benchmarks/results/``folder``/ and returned as Markdown links."""
    import shutil

    from adversarial.report import build_report

    db = sqlite_path(args.time_limit, args.bound_method)
    pairs = []
    for r in results:
        kind, _, config = r["method"].partition(" (")
        dense = dense_path(r["arch"], args.epochs, args.seed)
        pruned = pruned_path(r["arch"], kind, config.rstrip(")"), args.epochs, args.seed)
        pairs.append((str(dense), str(pruned)))
    out = OUT / "report"
    rep = build_report(db, out, pairs)
    dest = RESULTS / folder
    dest.mkdir(parents=True, exist_ok=True)
    links = []
    for f in rep.files:
        if f.suffix == ".png":
            shutil.copy(f, dest / f.name)
            links.append(f"![{f.stem}](benchmarks/results/{folder}/{f.name})")
    return links


def net_file(name: str, args: argparse.Namespace) -> Path | None:
    """The cached model file of a network named in the store."""
    for arch in ARCHS:
        prefix = f"_{arch}_e{args.epochs}_s{args.seed}"
        kind, sep, rest = name.partition(prefix)
        if not sep or kind not in ("dense", "best", "spr"):
            continue
        if kind == "dense" and not rest:
            return dense_path(arch, args.epochs, args.seed)
        if rest.startswith("_"):
            return pruned_path(arch, kind, rest[1:], args.epochs, args.seed)
    return None


# ------------------------------------------------------------------------------- report

# The seed paper's mean solve times in seconds (Gurobi, up to 32 threads, 180 s / 1800 s limits).
SEED_PUBLISHED = {
    "2x50": "12.7 -> 3.0",
    "2x100": "44.1 -> 19.9",
    "2x200": ">170 -> 79",
    "6x100": "n/a",
    "6x500": ">1800 -> ~40",
}


def shape(net: Network) -> str:
    """Hidden widths, e.g. ``32x27``."""
    return "x".join(str(layer.weight.shape[0]) for layer in net.layers[:-1])


def summarize(rows: list[dict], time_limit: float) -> dict:
    """Mean / median time (timeouts at the limit), solved count, median binaries and nonzeros
    (over the instances that built a formulation: PGD can decide one before)."""
    t = np.array(
        [min(r["time"], time_limit) if r["verdict"] in SOLVED else time_limit for r in rows]
    )
    built = [r for r in rows if r.get("binaries") is not None] or [
        {"binaries": np.nan, "nonzeros": np.nan}
    ]
    return {
        "mean": float(t.mean()),
        "median": float(np.median(t)),
        "solved": sum(r["verdict"] in SOLVED for r in rows),
        "n": len(rows),
        "binaries": float(np.median([r["binaries"] for r in built])),
        "nonzeros": float(np.median([r["nonzeros"] for r in built])),
        "times": t,
        "solved_mask": np.array([r["verdict"] in SOLVED for r in rows], dtype=bool),
        "adv": sum(r["verdict"] == "adversarial" for r in rows),
    }


SOLVED = ("adversarial", "robust")


def table(results: list[dict], time_limit: float, epochs: int) -> str:
    """The seed-style Markdown table (one row per pruned network)."""
    head = (
        "| arch | epochs | dense acc | dense mean / median s | dense solved | pruning | "
        "pruned acc (diff) | pruned shape | pruned mean / median s | pruned solved | "
        "median speedup | binaries | nonzeros | target met | seed paper mean s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in results:
        d, p = r["dense"], r["pruned"]
        speed = float(np.median(d["times"] / np.maximum(p["times"], 1e-3)))
        diff = 100 * (r["pruned_acc"] - r["dense_acc"])
        met = round(diff, 6) >= -0.5 and speed >= 10 and p["solved"] == p["n"]
        lines.append(
            f"| {r['arch']} | {epochs} | {100 * r['dense_acc']:.2f} | "
            f"{d['mean']:.1f} / {d['median']:.1f} | {d['solved']}/{d['n']} | {r['method']} | "
            f"{100 * r['pruned_acc']:.2f} ({diff:+.2f}) | {r['shape']} | "
            f"{p['mean']:.1f} / {p['median']:.1f} | {p['solved']}/{p['n']} | "
            f"{'>=' if d['solved'] < d['n'] else ''}{speed:.1f}x | "
            f"{d['binaries']:.0f} -> {p['binaries']:.0f} | "
            f"{d['nonzeros']:.0f} -> {p['nonzeros']:.0f} | {'yes' if met else 'no'} | "
            f"{SEED_PUBLISHED.get(r['arch'], 'n/a')} |"
        )
    return head + "\n".join(lines) + "\n"


def plot(
    results: list[dict], arch: str, time_limit: float, path: Path, tag: str = "symbolic"
) -> Path | None:
    """Cactus plot (instances decided within t) and dense-vs-pruned scatter for ``arch``."""
    rows = [r for r in results if r["arch"] == arch]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    curves = [("dense", rows[0]["dense"])] + [(r["method"], r["pruned"]) for r in rows]
    for label, summ in curves:
        t = np.sort(summ["times"][summ["solved_mask"]])
        ax1.step(np.concatenate([[0], t]), np.arange(len(t) + 1), where="post", label=label)
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("instances decided")
    ax1.set_xlim(0, time_limit)
    ax1.legend(fontsize=6)
    for r in rows:
        ax2.scatter(r["dense"]["times"], r["pruned"]["times"], s=12, label=r["method"])
    ax2.plot([0.1, time_limit], [0.1, time_limit], "k--", lw=0.8)
    ax2.plot([1, time_limit], [0.1, time_limit / 10], "k:", lw=0.8)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("dense time (s, limit counted at the limit)")
    ax2.set_ylabel("pruned time (s)")
    e = engine(tag)
    how = ("PGD, " if e["pgd"] else "") + {"auto": "BaB + HiGHS", "bab": "BaB"}.get(
        str(e["method"]), "HiGHS"
    )
    fig.suptitle(
        f"MNIST {arch}, L1 delta=5, {e['bound_method']} bounds, {how}, 1 thread, "
        f"limit {time_limit:g} s"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def stored_rows(store: Path, time_limit: float, bound: str) -> dict[str, list[dict]]:
    """Rows of the store by network name, for one time limit and bound method."""
    out: dict[str, list[dict]] = {}
    seen: dict[tuple, dict] = {}
    files = [store] if store.is_file() else []
    if store.parent == OUT:  # the committed exports, when the cache is gone
        files += sorted(RESULTS.glob(f"seed_mip_*_tl{time_limit:g}_{bound}.jsonl"))
    for f in files:
        for line in f.read_text().splitlines():
            row = json.loads(line)
            if row["time_limit"] != time_limit or row["bound"] != bound:
                continue
            key = (row["net"], row["index"])
            if key in seen:  # the cache's row wins; an export adds its net's accuracy, shape
                for k, v in row.items():
                    seen[key].setdefault(k, v)
                continue
            seen[key] = row
            out.setdefault(row["net"], []).append(row)
    return out


def export_path(arch: str, time_limit: float, bound: str) -> Path:
    """The committed per-instance export of one architecture (JSON lines, no weights)."""
    return RESULTS / f"seed_mip_{arch}_tl{time_limit:g}_{bound}.jsonl"


def export_rows(arch: str, nets: dict[str, Network], args: argparse.Namespace, store: Path) -> Path:
    """Write the per-instance rows of ``nets`` (store name -> net) on the first
    ``arch_images`` test images to ``export_path``, each with its net's accuracy and shape,
    so that the table can be rebuilt without the cache (``collect_rows``)."""
    rows = stored_rows(store, args.time_limit, args.bound_method)
    need = arch_images(args, arch)
    path = export_path(arch, args.time_limit, args.bound_method)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, net in nets.items():
        for r in sorted(rows.get(name, []), key=lambda r: r["index"]):
            if r["index"] < need:
                meta = {
                    "arch": arch,
                    "test_acc": float(net.meta["test_acc"]),
                    "train_acc": float(net.meta["train_acc"]),
                    "shape": shape(net),
                }
                lines.append(json.dumps({**r, **meta}, sort_keys=True))
    path.write_text("\n".join(lines) + "\n")
    return path


def collect_rows(
    arch: str, rows_by_net: dict[str, list[dict]], args: argparse.Namespace
) -> list[dict]:
    """Table rows of ``arch`` from per-instance rows that carry their net's ``test_acc`` and
    ``shape`` (the exported form): one per pruned net with all the first ``arch_images``
    images solved for it and for the dense net."""
    prefix = f"_{arch}_e{args.epochs}_s{args.seed}"
    need = arch_images(args, arch)
    drows = rows_by_net.get(f"dense{prefix}", [])
    dense_idx = {r["index"] for r in drows}
    out = []
    for name, rows in sorted(rows_by_net.items()):
        kind, _, config = name.partition(prefix + "_")
        if not config or kind == "dense":
            continue
        rows = sorted({r["index"]: r for r in rows}.values(), key=lambda r: r["index"])
        common = {i for i in dense_idx & {r["index"] for r in rows} if i < need}
        if len(common) < need:
            continue
        d = sorted((r for r in drows if r["index"] in common), key=lambda r: r["index"])
        p = [r for r in rows if r["index"] in common]
        out.append(
            {
                "arch": arch,
                "method": f"{kind} ({config})",
                "dense_acc": float(d[0]["test_acc"]),
                "pruned_acc": float(p[0]["test_acc"]),
                "shape": p[0]["shape"],
                "dense": summarize(d, args.time_limit),
                "pruned": summarize(p, args.time_limit),
            }
        )
    return out


def collect(
    arch: str, dense: Network, drows: list[dict], args: argparse.Namespace, store: Path
) -> list[dict]:
    """One table row per pruned net of ``arch`` with MIP results on the dense net's images."""
    prefix = f"_{arch}_e{args.epochs}_s{args.seed}"
    rows_by_net: dict[str, list[dict]] = {}
    meta = {"test_acc": float(dense.meta["test_acc"]), "shape": shape(dense)}
    rows_by_net[f"dense{prefix}"] = [{**r, **meta} for r in drows]
    for name, rows in stored_rows(store, args.time_limit, args.bound_method).items():
        kind, _, config = name.partition(prefix + "_")
        if not config or kind == "dense":
            continue
        path = pruned_path(arch, kind, config, args.epochs, args.seed)
        if path.is_file():
            net = load_network(path)
            meta = {"test_acc": float(net.meta["test_acc"]), "shape": shape(net)}
            rows_by_net[name] = [{**r, **meta} for r in rows]
        elif all("test_acc" in r for r in rows):  # exported rows, model file gone
            rows_by_net[name] = rows
    return collect_rows(arch, rows_by_net, args)


def parse_grid(
    points: list[str], arch: str, start: SeedSprStep | None = None, seed: int = 0
) -> list[Recipe]:
    """``--grid`` points for ``arch``: ``"n,w,rs[,decay,finetune,lr,sym,loss,adv]"`` for every
    architecture, or ``"ARCH:n,w,rs,..."`` for that one only, as recipes after ``start`` (the
    SPR step of ``--best-from spr``)."""
    out = []
    for g in points:
        name, sep, values = g.rpartition(":")
        if sep and name != arch:
            continue
        try:
            out.append(grid_recipe(values, start, seed))
        except ValueError:
            raise SystemExit(
                f"--grid point {g!r} is not 'n,w,rs[,decay,finetune,lr,sym,loss,adv]' "
                f"(loss one of {', '.join(STABILITY_LOSSES)})"
            ) from None
    if not out:
        raise SystemExit(f"--grid has no point for {arch}")
    return out


def recipes_for(paths: list[Path], arch: str) -> list[Recipe]:
    """The ``--recipes`` files whose ``[dense]`` hidden widths are ``arch``'s."""
    out = []
    for p in paths:
        recipe = load_recipe(p)
        if recipe.dense is not None and list(recipe.dense.hidden) == ARCHS[arch]:
            out.append(recipe)
    return out


def arch_grid(args: argparse.Namespace, arch: str, start: SeedSprStep | None) -> list[Recipe]:
    """The "best" grid of ``arch``: the ``--recipes`` files for it, else ``--grid``'s points,
    else ``GRID_POINTS``, each after ``start``."""
    seed = getattr(args, "seed", 0)
    files = recipes_for(getattr(args, "recipes", None) or [], arch)
    if files:
        return [replace(r, seed=seed) for r in files]
    return parse_grid(args.grid or GRID_POINTS, arch, start, seed)


def spr_net(arch: str, args: argparse.Namespace, data: tuple) -> Network:
    """``prune_spr`` over ``--spr-grid`` (the seed's grid when not given)."""
    sgrid = [tuple(map(float, g.split(","))) for g in args.spr_grid or []]
    return prune_spr(
        arch, args.epochs, args.seed, data, args.max_drop, args.spr_epochs, sgrid or None
    )


def best_start(arch: str, args: argparse.Namespace, data: tuple) -> SeedSprStep | None:
    """The SPR step the "best" recipes start with: ``None`` (from the dense net), or with
    ``--best-from spr`` that of the SPR net ``--spr-grid`` selects (pruned first if not
    cached)."""
    if getattr(args, "best_from", "dense") != "spr":
        return None
    step = spr_step_from_tag(spr_net(arch, args, data).meta["config"])
    return replace(step, max_accuracy_drop=args.max_drop)


def arch_images(args: argparse.Namespace, arch: str) -> int:
    """How many of the first test images the table uses for ``arch`` (``--arch-images``)."""
    for item in getattr(args, "arch_images", None) or []:
        name, _, n = item.partition("=")
        if name == arch:
            return int(n)
    return args.images


TITLE = "Seed experiment: MNIST, L1 delta=5 (issue 6)"

NOTES = """\
Times are wall-clock seconds per instance (bounds + build + HiGHS), a time-limit hit counted at
the limit, so a dense timeout makes the speedup a lower bound (marked >=). Speedup is the median
over the images of dense time / pruned time on the same image. Binaries and nonzeros are medians
over the images of the formulation handed to HiGHS. The seed's numbers are means with Gurobi on
up to 32 threads (180 s limit, 1800 s for 6x500), on different hardware: compare ratios, not
seconds. Test accuracy is on all 10,000 MNIST test images; "target met" means within 0.5
points of dense, a median speedup of at least 10x and every pruned instance decided.

Pruning names: `best (nA_wB_rsC_ftD[d][_lrL][_symK][_LOSS][_advE][_from_NET])` removes the
fraction A of hidden neurons per layer (lowest norm), masks the fraction B of first-layer
weights (magnitude), then fine-tunes D epochs (SGD lr L, default 0.05, `d`: the last 30% at
lr / 10) with Xiao et al.'s ReLU-stability loss at weight C over the L1 ball (first layer +-
eps * max |w|, interval bounds after it; `_symK`: the symbolic bounds the MIP uses, on K rows
per batch; `_LOSS`: `hinge` or `ratio` in place of tanh; `_advE`: half the cross-entropy on
L1 PGD points of radius E, adversarial training; `_from_NET`: starting from the pruned net
NET, e.g. the SPR net, instead of the dense one); then compacts. `spr (lL_aA_seE)` is the
seed's pipeline with the catalogue's SPR: E epochs of SPR
(lambda L, alpha A, M per layer from the dense net), the largest weight threshold whose neuron
drop costs at most 0.5 points of train accuracy, nearly empty neurons dropped, the rest kept
as trained, 10 fine-tuning epochs, compaction.
"""


def intro(args: argparse.Namespace, archs: list[str]) -> str:
    """How the table was made."""
    cut = [a for a in archs if arch_images(args, a) != args.images]
    fewer = "".join(f" ({a}: first {arch_images(args, a)} only)" for a in cut)
    return (
        f"MNIST MLPs 784 -> hidden -> 10 ({', '.join(archs)}), trained {args.epochs} epochs "
        "(SGD lr 0.1, momentum 0.9, batch 128). Problem: maximize y[second class] - "
        "y[predicted class] over [0,1]^784 within the L1 ball of radius 5 around each of the "
        f"first {args.images} MNIST test images{fewer}, stopped once the sign is settled "
        f"(the seed's problem). HiGHS, 1 thread, time limit {args.time_limit:g} s per instance, "
        f"`{args.bound_method}` bounds, on a 2-core machine shared with other jobs.\n\n"
        f"    python benchmarks/seed_experiment.py {' '.join(sys.argv[1:])}\n"
    )


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2x50 and 2x100 only")
    ap.add_argument("--archs", nargs="+", choices=list(ARCHS))
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--stage",
        choices=["train", "prune", "candidates", "mip", "report", "all"],
        default="all",
        help="candidates: prune every --grid point and print the selection table (accuracy, "
        "median unstable neurons over the L1 balls around the last --select-images training "
        "images; no MIP) with the most stable one within 0.5 test points in bold",
    )
    ap.add_argument("--select-images", type=int, default=10, help="see --stage candidates")
    ap.add_argument(
        "--export",
        action="store_true",
        help="report: also write the per-instance rows of each architecture to "
        "benchmarks/results/seed_mip_ARCH_tlT_BOUND.jsonl (read back when the cache is gone)",
    )
    ap.add_argument("--nets", nargs="+", default=["dense", "best"], help="which nets to solve")
    ap.add_argument("--images", type=int, default=20, help="first N MNIST test images")
    ap.add_argument(
        "--arch-images",
        nargs="+",
        metavar="ARCH=N",
        help="table over the first N images only for ARCH (when its runs could not finish)",
    )
    ap.add_argument("--time-limit", type=float, default=600.0)
    ap.add_argument(
        "--bound-method",
        default=DEFAULT_BOUND_METHOD,
        help="interval, symbolic, alpha, lp or mip; 'B+auto' or 'B+bab' (batch engine only): "
        "bounds B and branch and bound before (or instead of) the MIP; '+pgd' (batch engine "
        "only): PGD before either; each tag is a separate cache key",
    )
    ap.add_argument("--max-drop", type=float, default=0.005, help="max train accuracy drop")
    ap.add_argument("--mnist", type=Path, default=MNIST)
    ap.add_argument(
        "--grid",
        nargs="+",
        help="pruning grid points '[ARCH:]neurons,weights,rs[,decay,finetune,lr,sym,loss,adv]'"
        " (adv: L1 radius of adversarial fine-tuning, 0 off), most aggressive first",
    )
    ap.add_argument(
        "--recipes",
        nargs="+",
        type=Path,
        help="pruning recipe files (data/recipes/*.toml) in place of --grid; each is used for "
        "the architecture of its [dense] table (the dense net itself is this script's, "
        "--epochs and --seed; an architecture without a file keeps --grid or the default grid)",
    )
    ap.add_argument("--spr-grid", nargs="+", help="SPR grid points 'lambda,alpha'")
    ap.add_argument("--spr-epochs", type=int, default=20, help="epochs of SPR training")
    ap.add_argument(
        "--best-from",
        choices=["dense", "spr"],
        default="dense",
        help="the net the 'best' pipeline prunes and fine-tunes: the dense net, or the SPR net "
        "of --spr-grid (SPR's narrow deep layers, then the RS loss)",
    )
    ap.add_argument(
        "--engine", choices=["batch", "direct"], default="batch", help="how to run the MIPs"
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="batch engine: instances solved side by side (one process each, 1 thread)",
    )
    ap.add_argument(
        "--notes",
        type=Path,
        default=ROOT / "benchmarks" / "seed_notes.md",
        help="Markdown appended to the section (findings of the run)",
    )
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument(
        "--plots",
        action="store_true",
        help="report with --no-write: still write the plots (seed_ARCH_tlT_BOUND.png and the "
        "nn2mip report's, under seed_report_tlT_BOUND/) and print their Markdown links",
    )
    args = ap.parse_args()
    engine(args.bound_method)  # a bad tag stops here, before any training
    if args.engine == "direct" and "+" in args.bound_method:
        ap.error("--engine direct takes plain bounds; B+auto, B+bab and +pgd need the batch engine")
    torch.set_num_threads(1)
    archs = args.archs or (QUICK if args.quick else list(ARCHS))
    data = load_data(args.mnist)
    xte = data[2]
    indices = list(range(args.images))
    store = OUT / "mip_results.jsonl"
    results = []

    def batch(name: str, path: Path) -> list[dict]:
        return run_mips_batch(
            name, path, indices, args.time_limit, args.bound_method, store, args.mnist, args.jobs
        )

    for arch in archs:
        if args.stage == "report" and not dense_path(arch, args.epochs, args.seed).is_file():
            # The cache is gone: rebuild the table from the committed export, if any.
            exported = stored_rows(store, args.time_limit, args.bound_method)
            results += collect_rows(arch, exported, args)
            continue
        dense = train_dense(arch, args.epochs, args.seed, data)
        if args.stage == "train":
            continue
        start = best_start(arch, args, data)
        if args.stage == "candidates":
            grid = arch_grid(args, arch, start)
            nets = [prune_config(arch, args.epochs, args.seed, data, r) for r in grid]
            xs = data[0][-args.select_images :]
            rows = candidate_rows(arch, dense, nets, xs, args.bound_method)
            print(candidate_table(rows, choose_candidate(rows)), flush=True)
            continue
        if args.stage == "mip" and args.nets == ["dense"]:
            name = f"dense_{arch}_e{args.epochs}_s{args.seed}"
            path = dense_path(arch, args.epochs, args.seed)
            if args.engine == "batch":
                batch(name, path)
            else:
                run_mips(name, dense, xte, indices, args.time_limit, args.bound_method, store)
            continue
        grid = arch_grid(args, arch, start)
        pruned: dict[str, Network] = {}
        if "best" in args.nets:
            pruned["best"] = prune_best(arch, args.epochs, args.seed, data, args.max_drop, grid)
        if "spr" in args.nets:
            pruned["spr"] = spr_net(arch, args, data)
        if args.stage == "prune":
            continue
        nets = [("dense", dense, dense_path(arch, args.epochs, args.seed))] + [
            (k, n, pruned_path(arch, k, n.meta["config"], args.epochs, args.seed))
            for k, n in pruned.items()
        ]
        drows: list[dict] = []
        for kind, net, path in nets:
            name = f"{kind}_{arch}_e{args.epochs}_s{args.seed}"
            if kind != "dense":
                name += f"_{net.meta['config']}"
            solve = args.stage in ("mip", "all") and kind in args.nets
            if solve and args.engine == "batch":
                rows = batch(name, path)
            else:
                if kind != "dense":
                    mirror_batch_rows(
                        name, path, indices, args.time_limit, args.bound_method, store
                    )
                rows = run_mips(
                    name, net, xte, indices, args.time_limit, args.bound_method, store, solve
                )
            if kind == "dense":
                drows = rows
        if args.stage in ("report", "all") or not args.no_write:
            results += collect(arch, dense, drows, args, store)
            if args.export:
                named = {f"dense_{arch}_e{args.epochs}_s{args.seed}": dense} | {
                    f"{k}_{arch}_e{args.epochs}_s{args.seed}_{n.meta['config']}": n
                    for k, n in pruned.items()
                }
                log(f"exported {export_rows(arch, named, args, store)}")
    if results:
        md = table(results, args.time_limit, args.epochs)
        print(md)
        # Only the report (or a full run) rewrites the section: it is rebuilt from the archs
        # of this command alone, so a --stage mip run would drop every other row.
        if args.stage in ("report", "all") and (args.plots or not args.no_write):
            # --plots beside --no-write: names that say which run, so the plots of the main
            # table are not overwritten.
            run = f"_tl{args.time_limit:g}_{args.bound_method}" if args.no_write else ""
            links = []
            for arch in archs:
                png = plot(
                    results,
                    arch,
                    args.time_limit,
                    RESULTS / f"seed_{arch}{run}.png",
                    args.bound_method,
                )
                if png is not None:
                    links.append(f"![{arch}](benchmarks/results/{png.name})")
            import_direct_rows(store, args)
            links += nn2mip_report(results, args, f"seed_report{run}")
            if args.no_write:
                print("\n".join(links))
                return
            extra = args.notes.read_text() if args.notes and args.notes.is_file() else ""
            body = intro(args, archs) + "\n" + md + "\n" + NOTES + "\n" + extra + "\n"
            body += "\n".join(links)
            write_section(TITLE, body)


if __name__ == "__main__":
    main()
