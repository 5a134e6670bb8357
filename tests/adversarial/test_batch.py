"""Batch runner: resume after kill -9, same verdicts on every executor, clean failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adversarial.batch import parse_indices, plan_instances, run_batch
from adversarial.store import KEY_COLUMNS
from adversarial.witness import check_witness
from nn2mip.cli import main
from nn2mip.errors import InvalidInputError
from nn2mip.region import ball_region

ROOT = Path(__file__).resolve().parents[2]


def _verdicts(db: Path) -> dict[tuple, str]:
    with sqlite3.connect(db) as c:
        rows = c.execute(f"SELECT {', '.join(KEY_COLUMNS)}, verdict FROM results").fetchall()
    return {tuple(r[:-1]): r[-1] for r in rows}


def _check_all_witnesses(db: Path, nets: dict, digits) -> int:
    """Every adversarial row carries a witness that passes the float64 re-check."""
    by_path = {}
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        rows = [dict(r) for r in c.execute("SELECT * FROM results WHERE verdict='adversarial'")]
    for r in rows:
        net = by_path.setdefault(r["model_path"], nets[Path(r["model_path"]).stem])
        x = digits.x_test[r["input_id"]]
        w = np.array(json.loads(r["witness"]))
        target = None if r["target"] < 0 else r["target"]
        chk = check_witness(net, w, ball_region(x, r["eps"], r["norm"]), r["label"], target)
        assert chk.passed, r
        assert chk.margin == pytest.approx(r["margin"])
    return len(rows)


def test_parse_indices() -> None:
    assert parse_indices("0-3,7, 5") == [0, 1, 2, 3, 5, 7]
    for bad in ("a-b", "5-2", ""):
        with pytest.raises(InvalidInputError):
            parse_indices(bad)


def test_plan_expands_problems(batch_spec, nets, digits_data) -> None:
    from dataclasses import replace

    spec = replace(batch_spec, problems=["targeted", "seed", "min-distortion"], indices=[0])
    inst = plan_instances(spec)
    # targeted: 9 targets; seed: 1; min-distortion: 1 -> 11 per model, eps and norm
    assert len(inst) == 2 * 2 * 11
    seed = [i for i in inst if i.problem == "seed"][0]
    y = nets[Path(seed.model_path).stem].forward(digits_data.x_test[0])
    assert (seed.label, seed.target) == tuple(int(j) for j in np.argsort(-y)[:2])


def test_reference_run_and_rerun_skips(reference_db, batch_spec, nets, digits_data) -> None:
    v = _verdicts(reference_db)
    assert len(v) == 24 and set(v.values()) <= {"adversarial", "robust"}
    assert "adversarial" in v.values() and "robust" in v.values()
    _check_all_witnesses(reference_db, nets, digits_data)
    s = run_batch(batch_spec, reference_db, jobs=1, progress=False)
    assert (s.skipped, s.done) == (24, 0)


def _pool_workers(pgid: int) -> list[int]:
    """Live spawned workers in process group ``pgid`` (the session our subprocess leads)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z" and b"spawn_main" in cmd:
            out.append(int(d.name))
    return out


def test_kill9_and_rerun_exactly_once(
    tmp_path, capsys, reference_db, model_files, nets, digits_data
) -> None:
    """A process-pool batch killed with SIGKILL mid-run, then rerun: each instance once."""
    db = tmp_path / "k.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "nn2mip.cli",
        "attack",
        str(model_files["dense"]),
        str(model_files["pruned"]),
        "--indices",
        "0-5",
        "--eps",
        "0.04",
        "0.12",
        "--db",
        str(db),
        "--time-limit",
        "30",
        "--no-pgd",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [*cmd, "--jobs", "2"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        n = 0
        while time.time() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=0.1) as c:
                        n = c.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    n = 0  # the schema is being created
                if n >= 2:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # Orphaned pool workers notice the dead parent and exit by themselves.
        deadline = time.time() + 30
        while _pool_workers(proc.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not _pool_workers(proc.pid)
    finally:
        # The pool's workers are in the same session; end them too (our own process group).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    with sqlite3.connect(db) as c:
        partial = c.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 2 <= partial < 24, "the batch should have been killed mid-run"
    # The same command again (in this process: it saves a second torch import).
    assert main(cmd[3:]) == 0
    out = capsys.readouterr().out
    assert f"{partial} already stored, {24 - partial} solved now" in out
    with sqlite3.connect(db) as c:
        keys = c.execute(f"SELECT {', '.join(KEY_COLUMNS)} FROM results").fetchall()
    assert len(keys) == len(set(keys)) == 24
    # Sound verdicts do not depend on PGD, executor or interruptions.
    assert _verdicts(db) == _verdicts(reference_db)
    assert _check_all_witnesses(db, nets, digits_data) > 0  # MIP witnesses (PGD was off)


def test_dask_local_cluster_same_verdicts(tmp_path, batch_spec, reference_db) -> None:
    from dataclasses import replace

    db = tmp_path / "dask.sqlite"
    spec = replace(batch_spec, indices=[0, 2, 3, 5])  # a subset: cluster start-up dominates
    s = run_batch(spec, db, jobs=2, dask_address="local", progress=False)
    assert s.executor == "dask-local" and s.done == 16 and not s.errors
    ref = _verdicts(reference_db)
    got = _verdicts(db)
    assert got == {k: ref[k] for k in got}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "case,expect",
    [
        ("model", "model file not found"),
        ("indices", "out of range"),
        ("eps", "--eps: must be"),
        ("dask", "cannot reach the Dask scheduler"),
        ("schema", "another program"),
    ],
)
def test_bad_input_clean_error_db_untouched(
    tmp_path, capsys, model_files, reference_db, case, expect
) -> None:
    db = tmp_path / "finished.sqlite"
    shutil.copy(reference_db, db)
    args = ["attack", str(model_files["dense"]), "--indices", "0-5", "--eps", "0.04", "0.12"]
    args += ["--no-progress", "--time-limit", "30"]
    if case == "model":
        args[1] = str(tmp_path / "missing.safetensors")
    elif case == "indices":
        args[3] = "0,100000"
    elif case == "eps":
        args[5:7] = ["-0.1"]
    elif case == "dask":
        args += ["--dask", f"tcp://127.0.0.1:{_free_port()}", "--dask-timeout", "1"]
        args[3] = "0-7"  # new instances: it must fail before writing them
    elif case == "schema":
        db = tmp_path / "other.sqlite"
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE t (a)")
            c.execute("INSERT INTO t VALUES (1)")
    before = db.read_bytes()
    rc = main([*args, "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("nn2mip: error:") and "\n" not in err and expect in err, err
    assert db.read_bytes() == before


def test_branch_and_bound_method_same_verdicts_as_the_mip(
    tmp_path, capsys, model_files, nets, digits_data
) -> None:
    verdicts = {}
    for method in ("mip", "auto"):
        db = tmp_path / f"{method}.sqlite"
        args = ["attack", str(model_files["dense"]), "--indices", "0-5", "--eps", "0.04", "0.12"]
        args += ["--problem", "seed", "--no-pgd", "--no-progress", "--method", method]
        assert main([*args, "--db", str(db)]) == 0
        verdicts[method] = _verdicts(db)
        _check_all_witnesses(db, nets, digits_data)
    assert verdicts["auto"] == verdicts["mip"]
    assert set(verdicts["mip"].values()) <= {"robust", "adversarial"}
    with sqlite3.connect(tmp_path / "auto.sqlite") as c:
        assert c.execute("SELECT COUNT(*) FROM results WHERE decided_by='bab'").fetchone()[0] > 0
    capsys.readouterr()
    rc = main(["attack", str(model_files["dense"]), "--method", "lp", "--db", str(db)])
    assert rc == 2 and "invalid choice" in capsys.readouterr().err
