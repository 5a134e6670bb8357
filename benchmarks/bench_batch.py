"""Batch engine throughput: the same batch with 1 and 2 pool processes, and on a Dask local cluster.

    PYTHONPATH=. python benchmarks/bench_batch.py [--inputs 12] [--eps 0.04 0.1] [--write]

Trains a dense 64-48-48-10 digits MLP and a pruned copy (whole neurons + small weights, then
compacted), runs models x inputs x eps untargeted L-inf instances (PGD, then MIP) into a fresh
results file per configuration, and reports wall time (start-up included) and steady-state
throughput (first to last finished instance). ``--write`` puts the table into BENCHMARKS.md
under "## Batch engine (issue 5)". Verdicts of all runs are compared: they must agree.
"""

from __future__ import annotations

import argparse
import copy
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import torch

from adversarial.batch import BatchSpec, run_batch
from benchmarks.markdown import write_section
from nn2mip.datasets import load_digits
from nn2mip.serialize import save_network
from nn2mip.torch_io import from_torch
from pruning.compact import compact_network
from pruning.magnitude import magnitude_masks
from pruning.structured import neuron_masks
from pruning.training import accuracy, make_mlp, train

SECTION = "## Batch engine (issue 5)"


def make_models(out: Path) -> list[str]:
    torch.set_num_threads(1)
    d = load_digits()
    dense = train(make_mlp(64, [48, 48], 10, seed=0), d.x_train, d.y_train, epochs=12, lr=3e-3)
    pruned = copy.deepcopy(dense)
    masks = magnitude_masks(pruned, 0.5, existing=neuron_masks(pruned, 0.5))
    train(pruned, d.x_train, d.y_train, epochs=4, masks=masks)
    a = save_network(
        from_torch(dense),
        out / "dense.safetensors",
        meta={"accuracy": accuracy(dense, d.x_test, d.y_test)},
    )
    b = save_network(
        compact_network(from_torch(pruned)),
        out / "pruned.safetensors",
        meta={"accuracy": accuracy(pruned, d.x_test, d.y_test)},
    )
    return [str(a), str(b)]


def _cpu() -> float:
    """CPU seconds of this process and its finished descendants (pool and Dask workers are
    reaped at shutdown, so their time is included)."""
    import resource

    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def run(spec: BatchSpec, db: Path, **kw: object) -> dict[str, float]:
    stamps: list[float] = []
    cpu0 = _cpu()
    s = run_batch(
        spec, db, progress=False, on_row=lambda _r: stamps.append(time.perf_counter()), **kw
    )
    assert not s.errors, s.errors
    cpu_used = _cpu() - cpu0
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    with sqlite3.connect(db) as c:
        verdicts = dict(
            ((m, i, e), v)
            for m, i, e, v in c.execute("SELECT model_id, input_id, eps, verdict FROM results")
        )
        cpu = c.execute("SELECT SUM(total_time) FROM results").fetchone()[0]
    return {
        "done": s.done,
        "wall": s.wall_time,
        "throughput": s.throughput,
        "steady": steady,
        "instance_time": cpu,
        "cpu": cpu_used,
        "verdicts": verdicts,  # type: ignore[dict-item]
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=12)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.04, 0.1])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    models = make_models(tmp)
    spec = BatchSpec(
        models=models,
        indices=list(range(args.inputs)),
        eps=args.eps,
        time_limit=args.time_limit,
    )
    n = 2 * args.inputs * len(args.eps)
    configs = [
        ("process pool, 1 worker", dict(jobs=1, executor="process")),
        ("process pool, 2 workers", dict(jobs=2, executor="process")),
        ("Dask LocalCluster, 2 workers", dict(jobs=2, dask_address="local")),
    ]
    load0 = os.getloadavg()[0]
    results = {}
    for name, kw in configs:
        r = run(spec, tmp / f"{len(results)}.sqlite", **kw)
        results[name] = r
        print(
            f"{name:30s} {r['done']:3d} inst  wall {r['wall']:7.2f} s  "
            f"{r['throughput']:6.2f} inst/s  steady {r['steady']:6.2f} inst/s",
            file=sys.stderr,
        )
    load1 = os.getloadavg()[0]
    vs = [r.pop("verdicts") for r in results.values()]
    agree = all(v == vs[0] for v in vs)
    one, two, dask = (results[c[0]] for c in configs)
    lines = [
        SECTION,
        "",
        "Command: `PYTHONPATH=. python benchmarks/bench_batch.py "
        f"--inputs {args.inputs} --eps {' '.join(map(str, args.eps))}"
        f"{' --write' if args.write else ''}`",
        "",
        f"Batch: dense 64-48-48-10 and its pruned, compacted copy x {args.inputs} digits test "
        f"inputs x eps {args.eps}, untargeted L-inf (PGD, then MIP): {n} instances, "
        f"per-instance limit {args.time_limit:g} s, 1 HiGHS thread per instance. "
        f"Machine: {os.cpu_count()} cores shared with other jobs (1-min load average "
        f"{load0:.1f} before, {load1:.1f} after), so absolute times are noisy.",
        "",
        "| executor | instances | wall time (s) | throughput (inst/s) | steady-state (inst/s) | "
        "sum of instance times (s) | CPU used (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['done']} | {r['wall']:.2f} | {r['throughput']:.2f} | "
            f"{r['steady']:.2f} | {r['instance_time']:.2f} | {r['cpu']:.1f} |"
        )
    lines += [
        "",
        f"- 2 vs 1 process: throughput ratio {two['throughput'] / one['throughput']:.2f}x "
        f"(steady-state {two['steady'] / max(one['steady'], 1e-9):.2f}x).",
        f"- Dask LocalCluster vs process pool (2 workers each): wall time "
        f"{dask['wall'] / two['wall']:.2f}x, overhead {dask['wall'] - two['wall']:+.2f} s; "
        f"steady-state throughput ratio {dask['steady'] / max(two['steady'], 1e-9):.2f}x.",
        f"- Verdicts identical across the three runs: {'yes' if agree else 'NO'}.",
        "- CPU used counts this process and its reaped workers: with other jobs on the machine "
        "a second worker adds CPU demand but not necessarily CPU supply.",
        "- Wall time includes planning, worker start-up (spawned workers import torch) and "
        "shutdown; steady-state is (finished - 1) / (last finish - first finish).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(SECTION.removeprefix("## "), text.removeprefix(SECTION))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
