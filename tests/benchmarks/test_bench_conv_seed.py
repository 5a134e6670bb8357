"""bench_conv_seed on a small MNIST subset: files, shapes, the record, and the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.bench_conv_seed import main
from pruning.compact_conv import load_cnn

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def test_bench_conv_seed_trains_prunes_saves_and_resumes(tmp_path: Path) -> None:
    if not MNIST.is_dir():
        pytest.skip(f"MNIST not found at {MNIST} (expected ../shared/data/mnist)")
    argv = [
        "--data-dir", str(MNIST), "--out", str(tmp_path), "--train-limit", "600",
        "--epochs", "1", "--amounts", "0.5", "--steps", "1", "--channels", "4", "8",
        "--hidden", "16", "--tolerance", "100",
    ]  # fmt: skip
    main(argv)
    results = json.loads((tmp_path / "results.json").read_text())
    dense = results["dense_c4-8_h16_s0_e1"]
    name = results["chosen_c4-8_h16_s0_e1"]
    pruned = results[name]
    assert dense["channels"] == [4, 8] and dense["hidden"] == [16]
    assert pruned["channels"] == [2, 4] and pruned["hidden"] == [8]
    assert pruned["relus"] == 2 * 14 * 14 + 4 * 7 * 7 + 8 < dense["relus"]
    assert pruned["nonzeros"] < dense["nonzeros"]
    model, shape, header = load_cnn(tmp_path / pruned["file"])
    assert shape == (1, 28, 28) and float(header["compact_gap"]) < 1e-5
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    # A second run reuses both cached nets.
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.safetensors")}
    main(argv)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.safetensors")} == stamps
    assert json.loads((tmp_path / "results.json").read_text())[name] == pruned
