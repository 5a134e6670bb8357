"""Results store: unique instances, one transaction per row, foreign files refused untouched."""

from __future__ import annotations

import sqlite3

import pytest

from adversarial.store import ResultStore, StoreError, check_store


def _row(i: int, **kw: object) -> dict[str, object]:
    base = dict(
        model_path="m.safetensors",
        model_id="m",
        model_sha256="abc",
        dataset="digits",
        input_id=i,
        eps=0.05,
        norm="inf",
        problem="untargeted",
        target=-1,
        verdict="robust",
    )
    return {**base, **kw}


def test_unique_key_and_roundtrip(tmp_path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as s:
        assert s.add(_row(0, witness=[0.5, 0.25]))
        assert not s.add(_row(0, verdict="adversarial"))  # same instance: ignored
        assert s.add(_row(0, target=3, problem="targeted"))
        assert s.add(_row(1))
        assert s.count() == 3
        assert ("abc", "digits", 0, 0.05, "inf", "untargeted", -1) in s.finished_keys()
    with ResultStore(db, readonly=True) as s:
        rows = s.rows()
    assert rows[0]["verdict"] == "robust" and rows[0]["witness"] == "[0.5, 0.25]"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failed_transaction_leaves_nothing(tmp_path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as s:
        with pytest.raises(sqlite3.IntegrityError):
            s.add(_row(0, verdict=None))  # NOT NULL violated inside the transaction
        assert s.count() == 0
        assert s.add(_row(0))


@pytest.mark.parametrize("kind", ["foreign", "version", "text"])
def test_other_schema_refused_and_untouched(tmp_path, kind) -> None:
    db = tmp_path / "other.sqlite"
    if kind == "text":
        db.write_text("not a database\n" * 10)
    else:
        c = sqlite3.connect(db)
        if kind == "foreign":
            c.execute("CREATE TABLE results (a, b)")
        else:
            c.execute("CREATE TABLE schema_info (key TEXT PRIMARY KEY, value TEXT)")
            c.executemany(
                "INSERT INTO schema_info VALUES (?, ?)",
                [("schema", "nn2mip-adversarial-results"), ("version", "0")],
            )
        c.commit()
        c.close()
    before = db.read_bytes()
    for opener in (check_store, ResultStore, lambda p: ResultStore(p, readonly=True)):
        with pytest.raises(StoreError) as err:
            opener(db)
        assert "\n" not in str(err.value)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]
