"""Bounds and early stopping (issue 4): measure, then write a section of BENCHMARKS.md.

    PYTHONPATH=. python benchmarks/bench_bounds.py [--instances 6] [--time-limit 20]

Three tables:

1. unstable neurons and median time to verdict of a targeted attack (label vs runner-up class)
   with interval / symbolic / lp bounds, on trained digits nets (dense and structured-pruned)
   and, when ``../shared/data/mnist`` exists, an MNIST 784-50-50-10 net;
2. early-stop variants of the sign-only solve (nn2mip.sign) against solving to optimality;
3. build time of the Pyomo block vs a naive per-coefficient Pyomo build and OMLT's big-M block.

Timings are wall-clock on whatever machine runs this; the script prints the command line.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from adversarial.problems import targeted_attack
from benchmarks.markdown import write_section
from nn2mip import sign
from nn2mip.bounds import compute_bounds
from nn2mip.datasets import load_digits
from nn2mip.formulation import build_formulation
from nn2mip.mnist import load_mnist
from nn2mip.network import Network
from nn2mip.region import ball_region
from nn2mip.sign import SIGN_METHODS, solve_sign
from nn2mip.torch_io import from_torch
from pruning.compact import compact_network
from pruning.structured import neuron_masks
from pruning.training import make_mlp, train

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
SECTION = "Bounds and early stopping (issue 4)"
TOL = 1e-6


def digits_nets() -> tuple[dict[str, Network], np.ndarray, np.ndarray]:
    d = load_digits()
    dense = train(make_mlp(64, [64, 64], 10, seed=0), d.x_train, d.y_train, epochs=10, lr=3e-3)
    pruned = copy.deepcopy(dense)
    train(pruned, d.x_train, d.y_train, epochs=3, masks=neuron_masks(pruned, 0.5))
    nets = {
        "digits 64-64-64-10": from_torch(dense),
        "digits pruned": compact_network(from_torch(pruned)),
    }
    return nets, d.x_test, d.y_test


def mnist_net() -> tuple[dict[str, Network], np.ndarray, np.ndarray] | None:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        return None
    x, y = load_mnist(MNIST_DIR, "train")
    xt, yt = load_mnist(MNIST_DIR, "test")
    model = train(make_mlp(784, [50, 50], 10, seed=0), x, y, epochs=2, lr=2e-3, batch_size=128)
    net = from_torch(model)
    return {"mnist 784-50-50-10": net}, xt, yt


def instances(net: Network, xs: np.ndarray, ys: np.ndarray, n: int) -> list[tuple]:
    """Correctly classified test points with their runner-up class as the target."""
    out = []
    for x, y in zip(xs, ys, strict=True):
        logits = net.forward(x)
        if int(np.argmax(logits)) != int(y):
            continue
        target = int([j for j in np.argsort(-logits) if j != y][0])
        out.append((x, int(y), target))
        if len(out) == n:
            break
    return out


def bounds_table(nets, xs, ys, configs, n, time_limit) -> list[str]:
    rows = [
        "| network | ball | bounds | unstable | bounds time | median time to verdict "
        "| adv / robust / timeout |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, net in nets.items():
        insts = instances(net, xs, ys, n)
        for norm, eps in configs:
            for method in ("interval", "symbolic", "lp"):
                fracs, btimes, times, verdicts = [], [], [], []
                for x, label, target in insts:
                    t0 = time.perf_counter()
                    b = compute_bounds(net, ball_region(x, eps, norm), method)
                    btimes.append(time.perf_counter() - t0)
                    fracs.append(sum(b.unstable_counts(net)) / net.num_hidden_neurons)
                    r = targeted_attack(
                        net, x, label, target, eps, norm, time_limit=time_limit,
                        bound_method=method,
                    )  # fmt: skip
                    times.append(r.total_time)
                    verdicts.append(r.verdict)
                counts = "/".join(
                    str(verdicts.count(v)) for v in ("adversarial", "robust", "timeout")
                )
                rows.append(
                    f"| {name} | L{norm} {eps:g} | {method} | {100 * np.mean(fracs):.1f}% "
                    f"| {statistics.median(btimes):.3f} s | {statistics.median(times):.2f} s "
                    f"| {counts} |"
                )
                print(rows[-1], flush=True)
    return rows


def early_stop_table(net, name, xs, ys, configs, n, time_limit) -> tuple[list[str], str]:
    methods = ["none", *SIGN_METHODS]
    per: dict[str, list[float]] = {m: [] for m in methods}
    settled: dict[str, int] = dict.fromkeys(methods, 0)
    total = 0
    for norm, eps in configs:
        for x, label, target in instances(net, xs, ys, n):
            form = build_formulation(net, ball_region(x, eps, norm), bound_method="symbolic")
            out = form.output_cols
            form.model.set_objective(
                np.array([out[target], out[label]]), np.array([1.0, -1.0]), "max"
            )
            total += 1
            for m in methods:
                t0 = time.perf_counter()
                if m == "none":
                    from nn2mip.highs_backend import solve_highs

                    res = solve_highs(form.model, time_limit=time_limit)
                else:
                    res = solve_sign(form.model, TOL, TOL, m, time_limit=time_limit)  # type: ignore[arg-type]
                per[m].append(time.perf_counter() - t0)
                adv = res.objective is not None and res.objective > TOL
                rob = res.dual_bound is not None and res.dual_bound <= -TOL
                settled[m] += int(adv or rob)
            print(name, norm, eps, {m: round(per[m][-1], 3) for m in methods}, flush=True)
    rows = [
        f"Instances: {total} targeted problems on {name} "
        f"({', '.join(f'L{nm} {e:g}' for nm, e in configs)}), symbolic bounds, "
        f"time limit {time_limit:g} s (a timeout counts as the limit).",
        "",
        "| variant | median | mean | total | settled |",
        "|---|---|---|---|---|",
    ]
    for m in methods:
        t = per[m]
        rows.append(
            f"| {m} | {statistics.median(t):.3f} s | {np.mean(t):.3f} s | {sum(t):.1f} s "
            f"| {settled[m]}/{total} |"
        )
    best = min(SIGN_METHODS, key=lambda m: (sum(per[m]), statistics.median(per[m])))
    return rows, best


def pyomo_table(nets: dict[str, tuple[Network, np.ndarray]]) -> list[str]:
    import pyomo.environ as pyo

    from nn2mip.pyomo_backend import add_network

    rows = [
        "| network | binaries (symbolic) | nn2mip block | naive per-coefficient | OMLT big-M "
        "(interval, all binaries) |",
        "|---|---|---|---|---|",
    ]
    for name, (net, x0) in nets.items():
        region = ball_region(x0, 0.05, "inf")
        bounds = compute_bounds(net, region, "symbolic")
        m = pyo.ConcreteModel()
        t0 = time.perf_counter()
        pn = add_network(m, net, region=region, bounds=bounds)
        t_ours = time.perf_counter() - t0
        t_naive = _naive_build(net, region, bounds)
        t_omlt = _omlt_build(net, region)
        omlt = "not installed" if t_omlt is None else f"{t_omlt:.3f} s"
        rows.append(
            f"| {name} | {pn.stats['binaries']} | {t_ours:.3f} s | {t_naive:.3f} s | {omlt} |"
        )
        print(rows[-1], flush=True)
    return rows


def _naive_build(net: Network, region, bounds) -> float:
    """The same model with ``sum(c * x)`` expressions per row: what bulk building avoids."""
    import pyomo.environ as pyo

    from nn2mip.formulation import add_region, encode_network
    from nn2mip.mip import MipModel

    t0 = time.perf_counter()
    mip = MipModel()
    encode_network(mip, net, bounds, add_region(mip, region))
    lo, hi, integ = mip.col_lower(), mip.col_upper(), mip.integrality()
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(mip.num_cols))
    for j in range(mip.num_cols):
        m.x[j].setlb(float(lo[j]) if np.isfinite(lo[j]) else None)
        m.x[j].setub(float(hi[j]) if np.isfinite(hi[j]) else None)
        if integ[j]:
            m.x[j].domain = pyo.Binary
    a = mip.matrix().tocsr()
    rl, ru = mip.row_lower(), mip.row_upper()
    m.c = pyo.ConstraintList()
    for r in range(mip.num_rows):
        s, e = a.indptr[r], a.indptr[r + 1]
        expr = sum(float(a.data[p]) * m.x[int(a.indices[p])] for p in range(s, e))
        m.c.add((None if rl[r] == -np.inf else float(rl[r]), expr,
                 None if ru[r] == np.inf else float(ru[r])))  # fmt: skip
    return time.perf_counter() - t0


def _omlt_build(net: Network, region) -> float | None:
    try:
        import pyomo.environ as pyo
        from omlt import OmltBlock
        from omlt.neuralnet import ReluBigMFormulation

        from benchmarks.peers.runners import omlt_network
    except ImportError:
        return None
    import logging

    # OMLT initializes scaled inputs to 0 outside their bounds; Pyomo warns once per variable.
    logging.getLogger("pyomo.core").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    nd = omlt_network(net, region.lower, region.upper)
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(nd))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=6)
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--no-mnist", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    nets, xs, ys = digits_nets()
    mnist = None if args.no_mnist else mnist_net()

    digits_cfg = [("inf", 0.05), ("inf", 0.08), ("1", 1.5), ("1", 2.5)]
    body = [
        "Command: `PYTHONPATH=. python "
        + " ".join(["benchmarks/bench_bounds.py", *sys.argv[1:]])
        + f"` ({platform.processor() or platform.machine()}, HiGHS 1 thread, "
        f"{time.strftime('%Y-%m-%d')}).",  # fmt: skip
        "",
        "### Unstable neurons and time to verdict",
        "",
        f"Targeted attack (label vs runner-up class) on {args.instances} correctly classified "
        f"test points per row, time limit {args.time_limit:g} s; time to verdict includes "
        "bounds, build and solve, with the default early stop "
        f"(`{sign.DEFAULT_METHOD}`). Unstable: share of hidden ReLUs whose sign the bounds "
        "leave open (each costs a binary).",
        "",
    ]
    body += bounds_table(nets, xs, ys, digits_cfg, args.instances, args.time_limit)
    if mnist is not None:
        mnets, mx, my = mnist
        body += bounds_table(
            mnets, mx, my, [("inf", 0.02), ("1", 2.0)], args.instances, args.time_limit
        )[2:]
    body += ["", "### Early stopping of the sign-only solve", ""]
    es_rows, best = early_stop_table(
        nets["digits 64-64-64-10"],
        "digits 64-64-64-10",
        xs,
        ys,
        [("inf", 0.08), ("1", 1.5), ("1", 2.5)],
        args.instances + 2,
        args.time_limit,
    )
    body += es_rows
    body += [
        "",
        f"Fastest in total: `{best}`. `none` solves to optimality (default gaps).",
        "",
        "### Building the network as a Pyomo block",
        "",
        "Same network and input box (L-inf 0.05 around a test point). nn2mip: `add_network` "
        "with symbolic bounds given (stable neurons carry no binary), one LinearExpression per "
        "row. Naive: the same rows as `sum(c * x)` expression trees. OMLT: `ReluBigMFormulation` "
        "(one binary per ReLU, interval bounds).",
        "",
    ]
    ptable = {name: (net, xs[0]) for name, net in nets.items()}
    if mnist is not None:
        ptable.update({name: (net, mnist[1][0]) for name, net in mnist[0].items()})
    body += pyomo_table(ptable)
    body += ["", f"Total benchmark wall time: {time.perf_counter() - t_start:.0f} s."]
    write_section(SECTION, "\n".join(body), args.out)
    print("\n".join(body))


if __name__ == "__main__":
    main()
