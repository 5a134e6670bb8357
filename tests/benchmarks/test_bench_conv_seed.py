"""bench_conv_seed on a small MNIST subset: files, shapes, the record, and the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.bench_conv_seed import main
from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs
from nn2mip.mnist import load_mnist
from nn2mip.region import ball_region
from nn2mip.torch_io import from_torch, torch_forward
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


def _small_run(tmp_path: Path, *extra: str) -> list[str]:
    argv = [
        "--data-dir", str(MNIST), "--out", str(tmp_path), "--train-limit", "600",
        "--epochs", "1", "--amounts", "0.5", "--steps", "1", "--channels", "4", "8",
        "--hidden", "16", "--tolerance", "100", *extra,
    ]  # fmt: skip
    main(argv)
    return argv


def test_mip_stage_rows_table_and_fixed_input_mip_equals_forward_pass(tmp_path: Path) -> None:
    """The MIP stage records verdicts for both nets, re-checks witnesses and pairs images in
    the table; on the pruned CNN's IR the MIP over the seed's L1 ball, with the input fixed to
    the image and to points of the ball, reproduces the float64 torch forward pass."""
    if not MNIST.is_dir():
        pytest.skip(f"MNIST not found at {MNIST} (expected ../shared/data/mnist)")
    _small_run(tmp_path, "--images", "1", "--time-limit", "5", "--engines", "mip", "auto")
    rows = [json.loads(x) for x in (tmp_path / "mip_rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 1 * 2  # engines x images x nets
    assert all(r["verdict"] in ("adversarial", "robust", "timeout") for r in rows)
    assert all(r["witness_checked"] for r in rows if r["verdict"] == "adversarial")
    summary = json.loads((tmp_path / "mip_results.json").read_text())
    assert summary["mip"]["dense"]["n"] == summary["mip"]["pruned"]["n"] == 1
    assert summary["mip"]["pruned"]["binaries"] < summary["mip"]["dense"]["binaries"]
    table = (tmp_path / "mip_table.md").read_text()
    assert "| mip | pruned |" in table and "| auto | dense |" in table

    results = json.loads((tmp_path / "results.json").read_text())
    model, shape, _ = load_cnn(tmp_path / results[results["chosen_c4-8_h16_s0_e1"]]["file"])
    model = model.double()
    net = from_torch(model, input_shape=shape)
    x0 = load_mnist(str(MNIST), "test", 1)[0][0].reshape(-1)
    region = ball_region(x0, 5.0, "1")
    form = build_formulation(net, region)
    assert form.stats().binaries > 0  # the fixed input must pin genuinely free ReLUs
    form.model.set_objective(form.output_cols, np.ones(len(form.output_cols)))
    points = np.vstack([x0[None], region.sample(3, np.random.default_rng(0))])
    for x in points:
        form.model.set_col_bounds(form.input_cols, x, x)
        res = solve_highs(form.model, mip_feasibility_tolerance=1e-9)
        assert res.status == "optimal"
        ref = torch_forward(model, x.reshape(1, *shape))[0]
        np.testing.assert_allclose(res.x[form.output_cols], ref, atol=1e-6)
