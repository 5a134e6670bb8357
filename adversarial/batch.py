"""Batch adversarial search: models x inputs x eps x norms x problems, resumable, in parallel.

The parent process plans the instances (validating every input before anything is written),
skips those already in the results store, and hands the rest to workers: a local process pool
(spawn context) by default, or a Dask distributed cluster. Workers receive small picklable
``Instance`` records and load models and data from files themselves (cached per process), so no
torch object ever crosses a process boundary. Only the parent writes to SQLite, one committed
transaction per finished instance, which is what makes kill -9 + rerun exact.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from adversarial.distortion import min_distortion
from adversarial.methods import METHODS, NORMS, PROBLEMS
from adversarial.pgd import ball_attack
from adversarial.pipeline import verify
from adversarial.problems import attack_result
from adversarial.query import ball_query
from adversarial.seed import seed_classes
from adversarial.store import ResultStore, check_store, instance_key
from nn2mip.bounds import DEFAULT_BOUND_METHOD
from nn2mip.datasets import load_dataset
from nn2mip.errors import InvalidInputError, ModelFileError, Nn2mipError
from nn2mip.serialize import load_network


class BatchError(Nn2mipError):
    """A batch cannot start (for instance the Dask scheduler is unreachable)."""


@dataclass
class BatchSpec:
    """What to run. Every combination of models, indices, eps, norms and problems is an instance
    (``targeted`` expands further over ``targets``, default every class but the label).

    For ``min-distortion`` the eps value is the largest radius searched.
    """

    models: Sequence[str]
    indices: Sequence[int]
    eps: Sequence[float]
    norms: Sequence[str] = ("inf",)
    problems: Sequence[str] = ("untargeted",)
    dataset: str = "digits"
    data_dir: str | None = None
    targets: Sequence[int] | None = None
    time_limit: float = 60.0
    threads: int = 1
    pgd: bool = True
    pgd_steps: int = 40
    pgd_restarts: int = 8
    min_rel_tol: float = 1e-3
    bound_method: str = DEFAULT_BOUND_METHOD
    domain: tuple[float, float] = (0.0, 1.0)
    # targeted/seed problems on L-inf balls: "auto" tries branch and bound before the MIP
    method: str = "mip"


@dataclass(frozen=True)
class Settings:
    """Per-instance solver settings (the same for the whole batch)."""

    time_limit: float
    threads: int
    pgd: bool
    pgd_steps: int
    pgd_restarts: int
    min_rel_tol: float
    bound_method: str
    domain: tuple[float, float]
    method: str = "mip"


@dataclass(frozen=True)
class Instance:
    """One unit of work; small and picklable. ``target`` is -1 when there is none."""

    model_path: str
    model_id: str
    model_sha256: str
    model_shape: str
    model_weights: int
    model_accuracy: float | None
    dataset: str
    data_dir: str | None
    input_id: int
    label: int
    eps: float
    norm: str
    problem: str
    target: int

    def key(self) -> tuple[object, ...]:
        return instance_key(asdict(self))


@dataclass
class BatchSummary:
    """What a ``run_batch`` call did."""

    planned: int
    skipped: int
    done: int
    errors: list[str] = field(default_factory=list)
    verdicts: dict[str, int] = field(default_factory=dict)
    wall_time: float = 0.0
    executor: str = ""
    workers: int = 1

    @property
    def throughput(self) -> float:
        """Instances finished per second of wall time."""
        return self.done / self.wall_time if self.wall_time > 0 else 0.0


# -- planning ---------------------------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_indices(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,5"`` or a mix such as ``"0-4,7"`` -> sorted unique indices."""
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else ("-" + part[1:], "")
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise InvalidInputError(f"index range {part!r} is empty (end before start)")
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise InvalidInputError(f"cannot read indices {text!r}: use 0-9 or 0,3,5") from None
    if not out:
        raise InvalidInputError("no indices given")
    return sorted(out)


def _settings(spec: BatchSpec) -> Settings:
    return Settings(
        float(spec.time_limit),
        int(spec.threads),
        bool(spec.pgd),
        int(spec.pgd_steps),
        int(spec.pgd_restarts),
        float(spec.min_rel_tol),
        spec.bound_method,
        (float(spec.domain[0]), float(spec.domain[1])),
        spec.method,
    )


def _validate_spec(spec: BatchSpec) -> None:
    if not spec.models:
        raise InvalidInputError("no model given")
    if not spec.indices:
        raise InvalidInputError("no input indices given")
    if not spec.eps:
        raise InvalidInputError("no eps given")
    for e in spec.eps:
        if not np.isfinite(e) or e < 0:
            raise InvalidInputError(f"eps must be a finite number >= 0, got {e}")
    for n in spec.norms:
        if n not in NORMS:
            raise InvalidInputError(f"unknown norm {n!r}; choose 'inf' or '1'")
    for p in spec.problems:
        if p not in PROBLEMS:
            raise InvalidInputError(f"unknown problem {p!r}; choose one of {', '.join(PROBLEMS)}")
    if "min-distortion" in spec.problems and any(e <= 0 for e in spec.eps):
        raise InvalidInputError("min-distortion needs eps > 0 (the largest radius searched)")
    if not (np.isfinite(spec.time_limit) and spec.time_limit > 0):
        raise InvalidInputError(f"time limit must be a positive number, got {spec.time_limit}")
    if spec.threads < 1:
        raise InvalidInputError(f"threads must be >= 1, got {spec.threads}")
    if spec.pgd_steps < 1 or spec.pgd_restarts < 1:
        raise InvalidInputError("PGD steps and restarts must be >= 1")

    if spec.method not in METHODS:
        raise InvalidInputError(f"unknown method {spec.method!r}; choose from {', '.join(METHODS)}")
    if not spec.min_rel_tol > 0:
        raise InvalidInputError(f"min-distortion tolerance must be > 0, got {spec.min_rel_tol}")


def _model_ids(paths: Sequence[str]) -> dict[str, str]:
    """Short ids: the file stem, or the path when two models share a stem."""
    stems = Counter(Path(p).stem for p in paths)
    return {p: Path(p).stem if stems[Path(p).stem] == 1 else str(p) for p in paths}


def _meta_accuracy(meta: dict[str, str]) -> float | None:
    for key in ("accuracy", "test_accuracy"):
        try:
            return float(meta[key])
        except (KeyError, ValueError):
            continue
    return None


def plan_instances(spec: BatchSpec) -> list[Instance]:
    """Validate ``spec`` (models readable, indices in range, ...) and list its instances."""
    _validate_spec(spec)
    paths = [str(p) for p in spec.models]
    if len(set(paths)) != len(paths):
        raise InvalidInputError("a model is listed twice")
    for p in paths:
        if not Path(p).is_file():
            raise ModelFileError(f"model file not found: {p}")
    data = load_dataset(spec.dataset, spec.data_dir)
    n_test = len(data.y_test)
    bad = [i for i in spec.indices if not 0 <= i < n_test]
    if bad:
        raise InvalidInputError(
            f"index {bad[0]} is out of range: the {spec.dataset} test set has {n_test} inputs "
            f"(0-{n_test - 1})"
        )
    ids = _model_ids(paths)
    out: list[Instance] = []
    for path in paths:
        net = load_network(path)
        if net.input_size != data.num_features:
            raise InvalidInputError(
                f"{path} expects {net.input_size} inputs but {spec.dataset} has "
                f"{data.num_features} features"
            )
        acc = _meta_accuracy(net.meta)
        if acc is None:
            acc = float(np.mean(net.predict(data.x_test) == data.y_test))
        for t in spec.targets or ():
            if not 0 <= t < net.output_size:
                raise InvalidInputError(f"target {t} is not a class of {path}")
        base = dict(
            model_path=path,
            model_id=ids[path],
            model_sha256=file_sha256(path),
            model_shape=net.describe(),
            model_weights=net.num_weights,
            model_accuracy=acc,
            dataset=spec.dataset,
            data_dir=spec.data_dir,
        )
        for i in spec.indices:
            x, y = data.x_test[i], int(data.y_test[i])
            for eps in spec.eps:
                for norm in spec.norms:
                    for prob in spec.problems:
                        for label, target in _label_targets(prob, net, x, y, spec.targets):
                            out.append(
                                Instance(
                                    **base,  # type: ignore[arg-type]
                                    input_id=int(i),
                                    label=label,
                                    eps=float(eps),
                                    norm=norm,
                                    problem=prob,
                                    target=target,
                                )
                            )
    return out


def _label_targets(
    problem: str, net: Any, x: np.ndarray, y: int, targets: Sequence[int] | None
) -> list[tuple[int, int]]:
    if problem == "seed":
        pred, second = seed_classes(net, x)
        return [(pred, second)]
    if problem == "targeted":
        ts = targets if targets else range(net.output_size)
        return [(y, int(t)) for t in ts if t != y]
    if problem == "min-distortion" and targets:
        return [(y, int(t)) for t in targets if t != y]
    return [(y, -1)]


# -- the worker side --------------------------------------------------------------------------

_NETS: dict[str, Any] = {}
_DATA: dict[tuple[str, str | None], Any] = {}


def _worker_init(parent_pid: int | None = None) -> None:
    """Each worker solves one instance at a time: no intra-op threads for torch or BLAS.

    With ``parent_pid``, a daemon thread ends the worker once the parent is gone: a parent
    killed with SIGKILL cannot shut its pool down, and orphans would keep solving for nobody.
    """
    if parent_pid is not None:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()

    torch.set_num_threads(1)


def _load(inst: Instance) -> tuple[Any, Any]:
    if inst.model_sha256 not in _NETS:
        if file_sha256(inst.model_path) != inst.model_sha256:
            raise ModelFileError(f"{inst.model_path} changed while the batch was running")
        _NETS[inst.model_sha256] = load_network(inst.model_path)
    dkey = (inst.dataset, inst.data_dir)
    if dkey not in _DATA:
        _DATA[dkey] = load_dataset(inst.dataset, inst.data_dir)
    return _NETS[inst.model_sha256], _DATA[dkey]


def solve_instance(inst: Instance, settings: Settings) -> dict[str, object]:
    """Solve one instance (PGD first, MIP second) and return its results-store row."""
    net, data = _load(inst)
    # The clock starts after loading: the first instance of a worker must not pay for imports.
    t0 = time.perf_counter()
    x = np.asarray(data.x_test[inst.input_id], dtype=np.float64)
    target = None if inst.target < 0 else inst.target
    row: dict[str, object] = {**asdict(inst), "time_limit": settings.time_limit}
    row.pop("data_dir")
    row.update(
        threads=settings.threads,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        mip_solves=0,  # overwritten when a MIP runs; 0 says "decided without one"
        nodes=0,
        pgd_time=0.0,
    )
    if inst.problem == "min-distortion":
        r = min_distortion(
            net,
            x,
            inst.label,
            inst.norm,  # type: ignore[arg-type]
            target,
            eps_max=inst.eps,
            tol=settings.min_rel_tol * inst.eps,
            domain=settings.domain,
            time_limit=settings.time_limit,
            threads=settings.threads,
            bound_method=settings.bound_method,
            use_pgd=settings.pgd,
            pgd_steps=settings.pgd_steps,
            pgd_restarts=settings.pgd_restarts,
        )
        _fill(row, r)
        row.update(
            distortion=r.distortion,
            distortion_lower=r.lower,
            pgd_time=r.pgd_time,
            margin=None if r.check is None else r.check.margin,
            found_class=None if r.check is None else r.check.predicted,
        )
        row["total_time"] = time.perf_counter() - t0
        return row
    query = ball_query(net, x, inst.label, inst.eps, inst.norm, target, settings.domain)  # type: ignore[arg-type]
    attack = ball_attack(query, settings.pgd_steps, settings.pgd_restarts) if settings.pgd else None
    t1 = time.perf_counter()
    v = verify(
        net,
        query,
        max(settings.time_limit - (t1 - t0), 1e-2),
        # Untargeted problems never ran branch and bound; "seed" is targeted with label =
        # predicted and target = runner-up (fixed at planning).
        method="mip" if target is None else settings.method,
        bound_method=settings.bound_method,
        threads=settings.threads,
        attack=attack,
        spec_bounds=False,
    )
    res = attack_result(v, inst.label, target, inst.eps, inst.norm, time.perf_counter() - t1)
    row["pgd_time"] = v.times.get("attack", 0.0)
    if res.decided_by in ("clean", "pgd"):
        row.update(verdict="adversarial", decided_by=res.decided_by)
        if res.decided_by == "clean":
            row["note"] = "the center is misclassified"
        assert res.check is not None
        _witness(row, res.check)
        row["total_time"] = time.perf_counter() - t0
        return row
    _fill(row, res)
    row.update(margin=res.margin, bound=res.bound, found_class=res.found_class)
    row["total_time"] = time.perf_counter() - t0
    return row


def _fill(row: dict[str, object], r: Any) -> None:
    s = r.stats
    row.update(
        verdict=r.verdict,
        decided_by=r.decided_by,
        bounds_time=r.bounds_time,
        build_time=r.build_time,
        solve_time=r.solve_time,
        binaries=s.binaries,
        rows=s.rows,
        cols=s.cols,
        nonzeros=s.nonzeros,
        neurons=s.neurons,
        stable=s.constant + s.inactive + s.active,
        unstable=s.unstable,
        solver_status=r.solver_status,
        nodes=r.nodes,
        mip_solves=r.mip_solves,
        note=r.note or None,
        witness=None if r.witness is None else [float(v) for v in r.witness],
    )


def _witness(row: dict[str, object], chk: Any) -> None:
    row.update(
        margin=float(chk.margin),
        found_class=int(chk.predicted),
        witness=[float(v) for v in chk.x],
    )


# -- the parent side --------------------------------------------------------------------------


def _connect_dask(address: str, workers: int, timeout: float) -> tuple[Any, Any]:
    """A distributed Client (and the LocalCluster it owns when ``address == 'local'``)."""
    from distributed import Client, LocalCluster  # dask only when asked for: a heavy import

    if address == "local":
        import dask  # with ``distributed`` above: only for a local dask cluster

        # The workers' statistical profiler samples every 10 ms; on these short, Python-heavy
        # tasks it doubled instance times in our measurements, so the local cluster runs
        # without it (the config is handed to the spawned workers at start).
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            return Client(cluster), cluster
    try:
        return Client(address, timeout=timeout), None
    except (OSError, TimeoutError) as err:
        raise BatchError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
            f"({type(err).__name__})"
        ) from None
    except ValueError as err:
        raise BatchError(f"bad Dask address {address!r}: {err}") from None


def run_batch(
    spec: BatchSpec,
    db_path: str | Path,
    jobs: int = 1,
    dask_address: str | None = None,
    progress: bool = True,
    dask_timeout: float = 10.0,
    executor: str = "auto",
    on_row: Callable[[dict[str, object]], None] | None = None,
) -> BatchSummary:
    """Run every instance of ``spec`` not yet in ``db_path``; return what was done.

    ``executor``: "auto" (in-process for ``jobs == 1``, else a process pool), "inline",
    "process"; ``dask_address`` (an address or "local") overrides it. Everything that can be
    checked is checked before the results file is opened for writing. On a remote Dask cluster
    the workers need this package importable and the model files (and MNIST files) at the same
    paths as here; only the parent writes the results file.
    """
    t0 = time.perf_counter()
    if jobs < 1:
        raise InvalidInputError(f"jobs must be >= 1, got {jobs}")
    if executor not in ("auto", "inline", "process"):
        raise InvalidInputError(f"executor must be auto, inline or process, got {executor!r}")
    instances = plan_instances(spec)
    settings = _settings(spec)
    finished: set[tuple[object, ...]] = set()
    if check_store(db_path):
        with ResultStore(db_path, readonly=True) as ro:
            finished = ro.finished_keys()
    seen: set[tuple[object, ...]] = set()
    todo = []
    for inst in instances:
        k = inst.key()
        if k not in finished and k not in seen:
            seen.add(k)
            todo.append(inst)
    summary = BatchSummary(len(instances), len(instances) - len(todo), 0, workers=jobs)
    client = cluster = None
    if dask_address is not None:
        summary.executor = "dask-local" if dask_address == "local" else "dask"
        client, cluster = _connect_dask(dask_address, jobs, dask_timeout)
    else:
        summary.executor = (
            "inline" if (executor == "inline" or (executor == "auto" and jobs == 1)) else "process"
        )
    try:
        with ResultStore(db_path) as store:
            bar = _progress_bar(len(todo), summary.skipped, progress)
            counts: Counter[str] = Counter()

            def record(row: dict[str, object]) -> None:
                store.add(row)
                summary.done += 1
                counts[str(row["verdict"])] += 1
                if on_row is not None:
                    on_row(row)
                if bar is not None:
                    bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
                    bar.update(1)

            def failed(inst: Instance, err: BaseException) -> None:
                msg = f"{inst.model_id} input {inst.input_id} eps {inst.eps} {inst.norm} "
                msg += f"{inst.problem}: {type(err).__name__}: {err}"
                summary.errors.append(msg)
                print(f"nn2mip: instance failed: {msg}", file=sys.stderr)

            if not todo:
                pass
            elif client is not None:
                _run_dask(client, todo, settings, record, failed)
            elif summary.executor == "inline":
                _worker_init()
                for inst in todo:
                    try:
                        row = solve_instance(inst, settings)
                    except Exception as err:  # same policy as the pool: report, keep going
                        failed(inst, err)
                        continue
                    record(row)
            else:
                _run_pool(todo, settings, jobs, record, failed)
            if bar is not None:
                bar.close()
            summary.verdicts = dict(counts)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    summary.wall_time = time.perf_counter() - t0
    return summary


def _progress_bar(total: int, skipped: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None

    desc = "attack" if not skipped else f"attack ({skipped} done before)"
    return tqdm(total=total, desc=desc, unit="inst", file=sys.stderr, dynamic_ncols=True)


def _run_pool(
    todo: Sequence[Instance],
    settings: Settings,
    jobs: int,
    record: Callable[[dict[str, object]], None],
    failed: Callable[[Instance, BaseException], None],
) -> None:
    # spawn: no forked copy of the parent's torch/HiGHS threads and locks in the children.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
    ) as pool:
        pending: dict[Future, Instance] = {}
        it = iter(todo)
        try:
            # Keep a bounded window in flight so a huge batch does not pickle everything up front.
            for inst in _take(it, 4 * jobs):
                pending[pool.submit(solve_instance, inst, settings)] = inst
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    inst = pending.pop(fut)
                    err = fut.exception()
                    if err is not None:
                        failed(inst, err)
                    else:
                        record(fut.result())
                    for nxt in _take(it, 1):
                        pending[pool.submit(solve_instance, nxt, settings)] = nxt
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _take(it: Iterable[Instance], n: int) -> list[Instance]:
    out = []
    for inst in it:
        out.append(inst)
        if len(out) >= n:
            break
    return out


def _run_dask(
    client: Any,
    todo: Sequence[Instance],
    settings: Settings,
    record: Callable[[dict[str, object]], None],
    failed: Callable[[Instance, BaseException], None],
) -> None:
    from distributed import as_completed  # dask only when asked for: a heavy import

    futures = [client.submit(solve_instance, inst, settings, pure=False) for inst in todo]
    owner = {f.key: inst for f, inst in zip(futures, todo, strict=True)}
    try:
        for fut in as_completed(futures):
            inst = owner[fut.key]
            try:
                row = fut.result()
            except Exception as err:  # a worker-side failure: report it, keep going
                failed(inst, err)
                continue
            record(row)
    except BaseException:
        client.cancel(futures)
        raise
