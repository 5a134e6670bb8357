"""Report: files exist, and every number in them matches the results store."""

from __future__ import annotations

import csv
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from adversarial.report import build_report
from nn2mip.cli import main


def _db_rows(db: Path) -> list[dict]:
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute("SELECT * FROM results ORDER BY id")]


def test_report_matches_store(tmp_path, reference_db) -> None:
    before = reference_db.read_bytes()
    out = tmp_path / "rep"
    rep = build_report(reference_db, out)
    assert reference_db.read_bytes() == before  # read-only
    for name in ("results.csv", "summary.md", "cactus.png", "scatter_dense_vs_pruned.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "cactus.png").read_bytes()[:4] == b"\x89PNG"
    rows = _db_rows(reference_db)
    with open(out / "results.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(rows)
    for c, r in zip(csv_rows, rows, strict=True):
        assert int(c["id"]) == r["id"] and c["verdict"] == r["verdict"]
        assert float(c["total_time"]) == r["total_time"] and c["model_sha256"] == r["model_sha256"]

    md = (out / "summary.md").read_text()
    for model in ("dense", "pruned"):
        mine = [r for r in rows if r["model_id"] == model]
        t = np.array([r["total_time"] for r in mine])
        adv = sum(r["verdict"] == "adversarial" for r in mine)
        rob = sum(r["verdict"] == "robust" for r in mine)
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {model} |"))
        cells = [x.strip() for x in line.strip("|").split("|")]
        assert cells[4:6] == [str(len(mine)), str(adv)] and cells[6] == str(rob)
        assert float(cells[-2]) == pytest.approx(np.median(t), abs=1e-4)
        assert float(cells[-1]) == pytest.approx(np.mean(t), abs=1e-4)
    acc = (
        rows[0]["model_accuracy"] if rows[0]["model_id"] == "dense" else rows[-1]["model_accuracy"]
    )
    assert f"{acc:.4f}" in md

    # Speedup recomputed independently with SQL over instances both decided.
    with sqlite3.connect(reference_db) as c:
        pairs = c.execute(
            "SELECT d.total_time / p.total_time FROM results d JOIN results p ON "
            "d.input_id = p.input_id AND d.eps = p.eps AND d.norm = p.norm AND "
            "d.problem = p.problem AND d.target = p.target WHERE d.model_id = 'dense' AND "
            "p.model_id = 'pruned' AND d.verdict IN ('adversarial', 'robust') AND "
            "p.verdict IN ('adversarial', 'robust')"
        ).fetchall()
    (pair,) = rep.pairs
    assert pair.both_solved == len(pairs) == 12
    assert pair.median_speedup == pytest.approx(float(np.median([p[0] for p in pairs])))
    m = re.search(r"\| dense \| pruned \| 12 \| 12 \| ([0-9.]+)x \| 0 \| 0 \|", md)
    assert m and float(m.group(1)) == pytest.approx(pair.median_speedup, abs=0.005)


def test_report_cli_explicit_pair_and_errors(tmp_path, capsys, reference_db) -> None:
    assert (
        main(["report", str(reference_db), "--out", str(tmp_path), "--pair", "dense", "pruned"])
        == 0
    )
    assert "median speedup" in capsys.readouterr().out
    assert main(["report", str(reference_db), "--out", str(tmp_path), "--pair", "a", "b"]) == 2
    assert "no model 'a'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "none.sqlite"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
