"""The seed experiment's pieces: L1-ball bounds (sound), the ReLU-stability loss, naming."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.seed_experiment import grid_recipe, net_file, tag
from pruning.recipe import SeedSprStep, StabilityStep, l1_ball_bounds, stability_regularizer
from pruning.training import linear_layers, make_mlp


def _pre_activations(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    out, h = [], x
    lins = linear_layers(model)
    for lin in lins[:-1]:
        z = h @ lin.weight.T + lin.bias
        out.append(z)
        h = torch.relu(z)
    return out


def test_l1_ball_bounds_contain_sampled_points() -> None:
    model = make_mlp(20, [8, 6], 3, seed=1).double()
    rng = np.random.default_rng(0)
    x0 = torch.as_tensor(rng.uniform(0, 1, (1, 20)))
    eps = 1.5
    with torch.no_grad():
        bounds = l1_ball_bounds(model, x0, eps)
        for _ in range(500):
            d = rng.standard_normal(20)
            d *= rng.uniform(0, eps) / np.abs(d).sum()
            x = torch.as_tensor(np.clip(x0.numpy() + d, 0, 1))
            for (lo, hi), z in zip(bounds, _pre_activations(model, x), strict=True):
                assert torch.all(lo <= z + 1e-9) and torch.all(z <= hi + 1e-9)


def test_relu_stability_loss_is_negative_and_differentiable() -> None:
    model = make_mlp(20, [8, 6], 3, seed=2)
    x = torch.rand(4, 20)
    reg = stability_regularizer(StabilityStep(stability_weight=0.5, stability_eps=1.0))
    assert reg is not None
    loss = reg(model, x)
    assert -0.5 <= float(loss.detach()) <= 0.5
    loss.backward()
    assert linear_layers(model)[0].weight.grad is not None


def test_names_round_trip() -> None:
    import argparse

    args = argparse.Namespace(epochs=50, seed=0)
    name = tag(grid_recipe("0.4,0.8,0.2,1"))
    assert name == "n0.4_w0.8_rs0.2_ft10d"
    path = net_file(f"best_2x50_e50_s0_{name}", args)
    assert path is not None and path.name == f"best_2x50_{name}_e50_s0.safetensors"
    dense = net_file("dense_2x100_e50_s0", args)
    assert dense is not None and dense.name == "dense_2x100_e50_s0.safetensors"


def test_tags_and_per_arch_image_counts() -> None:
    import argparse

    from benchmarks.seed_experiment import arch_images

    # The learning rate and the symbolic RS loss are in the tag only when not the defaults.
    assert tag(grid_recipe("0.3,0.7,0.2,1,20")) == "n0.3_w0.7_rs0.2_ft20d"
    assert tag(grid_recipe("0.2,0.5,0.3,1,10,0.02,8")) == "n0.2_w0.5_rs0.3_ft10d_lr0.02_sym8"
    args = argparse.Namespace(images=20, arch_images=["2x100=10"])
    assert arch_images(args, "2x100") == 10 and arch_images(args, "2x50") == 20
    assert arch_images(argparse.Namespace(images=5), "2x50") == 5


def test_symbolic_rs_loss_uses_the_first_rows_only() -> None:
    model = make_mlp(20, [8, 6], 3, seed=3)
    x = torch.rand(6, 20)
    step = StabilityStep(
        stability_weight=0.5, stability_eps=1.0, stability_bounds="symbolic", stability_rows=2
    )
    reg = stability_regularizer(step)
    assert reg is not None
    a = reg(model, x)
    b = reg(model, torch.cat([x[:2], torch.rand(4, 20)]))
    assert float(a.detach()) == float(b.detach()) < 0


def test_grid_points_per_architecture() -> None:
    import argparse

    import pytest

    from benchmarks.seed_experiment import GRID_POINTS, arch_grid, parse_grid

    pts = ["2x50:0.3,0.7,0.2,1,20", "2x100:0.2,0.5,0.3,1,10,0.02", "0.1,0,0"]
    assert [tag(c) for c in parse_grid(pts, "2x50")] == [
        "n0.3_w0.7_rs0.2_ft20d",
        "n0.1_w0_rs0_ft10",
    ]
    assert tag(parse_grid(pts, "2x100")[0]) == "n0.2_w0.5_rs0.3_ft10d_lr0.02"
    with pytest.raises(SystemExit):
        parse_grid(pts[:1], "6x100")
    hinge = parse_grid(["6x100:0.3,0.7,0.05,1,10,0.02,8,hinge"], "6x100")[0]
    step = hinge.steps[-1]
    assert isinstance(step, StabilityStep)
    assert (step.stability_rows, step.stability_loss) == (8, "hinge")
    assert tag(hinge) == "n0.3_w0.7_rs0.05_ft10d_lr0.02_sym8_hinge"
    # --best-from spr: the start net's tag goes into every point's tag (its own cache file).
    start = SeedSprStep(spr_lambda=0.001, spr_alpha=0.5, spr_epochs=20)
    spr = parse_grid(["0,0,2,1,10,0.02,2,ratio"], "6x100", start)[0]
    assert tag(spr) == "n0_w0_rs2_ft10d_lr0.02_sym2_ratio_from_spr_l0.001_a0.5_se20"
    args = argparse.Namespace(grid=None)
    grid = arch_grid(args, "2x50", start)
    assert len(grid) == len(GRID_POINTS) and all(r.steps[0] == start for r in grid)
    assert all(len(r.steps) == 1 for r in arch_grid(args, "2x50", None))
    adv = parse_grid(["0,0,1,1,10,0.02,2,ratio,5"], "6x100", start)[0]
    adv_step = adv.steps[-1]
    assert isinstance(adv_step, StabilityStep) and adv_step.adversarial is not None
    assert adv_step.adversarial.eps == 5.0
    assert tag(adv) == "n0_w0_rs1_ft10d_lr0.02_sym2_ratio_adv5_from_spr_l0.001_a0.5_se20"
    bad_points = ("0.3,0.7", "0.3,0.7,0.1,1,10,0.02,8,square", "0.3,x,0.1", "1,2,3,4,5,6,7,8,9")
    for bad in (*bad_points, "0,0,1,1,10,0.02,2,ratio,x", "0,0,1,1,10,0.02,2,ratio,5,1"):
        with pytest.raises(SystemExit, match="--grid point"):
            parse_grid([bad], "2x50")


def test_engine_tags() -> None:
    import pytest

    from benchmarks.seed_experiment import engine

    assert engine("alpha") == {"bound_method": "alpha", "method": "mip", "pgd": False}
    assert engine("alpha+auto") == {"bound_method": "alpha", "method": "auto", "pgd": False}
    assert engine("alpha+pgd") == {"bound_method": "alpha", "method": "mip", "pgd": True}
    assert engine("lp+bab+pgd") == {"bound_method": "lp", "method": "bab", "pgd": True}
    for bad in ("alpha+auto+bab", "alpha+pgd+pgd"):
        with pytest.raises(SystemExit, match="--bound-method"):
            engine(bad)


def test_unstable_median_matches_the_bounds_and_candidate_choice() -> None:
    from benchmarks.seed_experiment import candidate_rows, choose_candidate, unstable_median
    from nn2mip.bounds import compute_bounds
    from nn2mip.region import ball_region
    from nn2mip.torch_io import from_torch

    net = from_torch(make_mlp(12, [10, 8], 3, seed=4).double())
    xs = np.random.default_rng(1).uniform(0, 1, (3, 12))
    counts = [
        sum(compute_bounds(net, ball_region(x, 5.0, "1"), "symbolic").unstable_counts(net))
        for x in xs
    ]
    assert unstable_median(net, xs) == float(np.median(counts))
    # A radius-0 ball leaves no neuron unstable (up to exact zeros, which the seed nets lack).
    assert unstable_median(net, xs, eps=0.0) == 0.0

    net.meta.update(test_acc="0.9800", train_acc="1.0000", config="dense")
    rows = candidate_rows("2x10", net, [], xs, "symbolic")
    assert rows[0]["config"] == "dense" and rows[0]["test_diff"] == 0.0
    cands = rows + [
        {"config": "a", "test_diff": -0.4, "unstable": 30.0},
        {"config": "b", "test_diff": -0.6, "unstable": 10.0},  # too inaccurate
        {"config": "c", "test_diff": -0.1, "unstable": 30.0},  # tie: the more accurate
        {"config": "d", "test_diff": -0.5, "unstable": 40.0},
    ]
    chosen = choose_candidate(cands)
    assert chosen is not None and chosen["config"] == "c"
    assert choose_candidate(rows) is None
    # 97.91 vs 98.41 is -0.50 points, not -0.5000000000000004: still within 0.5
    edge = {"config": "e", "test_diff": 100 * (0.9791 - 0.9841), "unstable": 5.0}
    assert edge["test_diff"] < -0.5
    assert choose_candidate([*cands, edge]) is edge


def test_export_rebuilds_the_table_without_the_cache(tmp_path, monkeypatch) -> None:
    import argparse
    import json

    import benchmarks.seed_experiment as se
    from nn2mip.serialize import save_network
    from nn2mip.torch_io import from_torch

    monkeypatch.setattr(se, "OUT", tmp_path / "out")
    monkeypatch.setattr(se, "RESULTS", tmp_path / "results")
    se.OUT.mkdir()
    store = se.OUT / "mip_results.jsonl"
    args = argparse.Namespace(
        epochs=50, seed=0, images=3, time_limit=120.0, bound_method="symbolic"
    )
    dense = from_torch(make_mlp(12, [10, 10], 3, seed=5))
    dense.meta.update(test_acc="0.9800", train_acc="1.0000")
    pruned = from_torch(make_mlp(12, [6, 5], 3, seed=6))
    pruned.meta.update(test_acc="0.9760", train_acc="0.9990", config="cfgA")
    names = {"dense_2x10_e50_s0": dense, "best_2x10_e50_s0_cfgA": pruned}
    dense_t = {0: 120.0, 1: 30.0, 2: 10.0}
    verdict = {0: "timeout", 1: "robust", 2: "adversarial"}
    with store.open("w") as f:
        for name in names:
            for i in range(4):  # image 3 is beyond --images and is not exported
                t = dense_t.get(i, 5.0) if name.startswith("dense") else 2.0
                row = {
                    "net": name,
                    "index": i,
                    "time_limit": 120.0,
                    "bound": "symbolic",
                    "verdict": verdict.get(i, "robust") if name.startswith("dense") else "robust",
                    "time": t,
                    "binaries": 7,
                    "nonzeros": 100,
                }
                f.write(json.dumps(row) + "\n")
    # collect() reads the pruned net's accuracy and shape from its cached model file
    save_network(pruned, se.pruned_path("2x10", "best", "cfgA", 50, 0), meta=pruned.meta)
    path = se.export_rows("2x10", names, args, store)
    assert path == se.export_path("2x10", 120.0, "symbolic")
    lines = [json.loads(s) for s in path.read_text().splitlines()]
    assert len(lines) == 6 and {r["shape"] for r in lines} == {"10x10", "6x5"}
    expected = se.collect(
        "2x10", dense, [r for r in lines if r["net"].startswith("d")], args, store
    )

    # with the cache's store still there, the export completes its rows
    both = se.collect_rows("2x10", se.stored_rows(store, 120.0, "symbolic"), args)
    assert se.table(both, 120.0, 50) == se.table(expected, 120.0, 50)

    store.unlink()  # the cache is lost; the export alone rebuilds the same table row
    got = se.collect_rows("2x10", se.stored_rows(store, 120.0, "symbolic"), args)
    assert len(got) == len(expected) == 1
    g, e = got[0], expected[0]
    assert g["method"] == "best (cfgA)" and g["shape"] == "6x5"
    assert g["dense_acc"] == 0.98 and g["pruned_acc"] == 0.976
    assert g["dense"]["solved"] == 2 and g["pruned"]["solved"] == 3
    np.testing.assert_allclose(g["dense"]["times"], e["dense"]["times"])
    assert se.table(got, 120.0, 50) == se.table(expected, 120.0, 50)
    assert ">=15.0x" in se.table(got, 120.0, 50)  # median of 60, 15, 5


def test_summary_skips_instances_decided_before_a_formulation() -> None:
    """PGD can decide an instance before any MIP is built: its row has no binaries."""
    from benchmarks.seed_experiment import summarize

    rows = [
        {"time": 0.01, "verdict": "adversarial", "binaries": None, "nonzeros": None},
        {"time": 2.0, "verdict": "robust", "binaries": 30, "nonzeros": 900},
        {"time": 9.0, "verdict": "timeout", "binaries": 50, "nonzeros": 1100},
    ]
    s = summarize(rows, 5.0)
    assert (s["binaries"], s["nonzeros"], s["solved"], s["adv"]) == (40.0, 1000.0, 2, 1)
    assert list(s["times"]) == [0.01, 2.0, 5.0]


def test_cached_pipeline_builds_the_recipe_net(tmp_path, monkeypatch) -> None:
    """The script's cache layer (dense, SPR point, best net) gives the net that
    ``pruning.recipe.run_recipe`` builds from the same recipe in one go, and reuses its files."""
    from dataclasses import replace

    import benchmarks.seed_experiment as se
    from nn2mip.datasets import load_digits
    from nn2mip.torch_io import from_torch
    from pruning.compact import compact_network
    from pruning.recipe import DenseTraining, SeedSprStep, run_recipe

    monkeypatch.setattr(se, "OUT", tmp_path)
    monkeypatch.setitem(se.ARCHS, "2x12", [12, 12])
    d = load_digits()
    data = (d.x_train, d.y_train, d.x_test, d.y_test)
    torch.set_num_threads(1)
    se.train_dense("2x12", 2, 0, data)
    start = SeedSprStep(spr_epochs=2)
    recipe = se.parse_grid(["0.2,0.3,0.5,1,1,0.02,2,ratio"], "2x12", start)[0]
    net = se.prune_config("2x12", 2, 0, data, recipe)
    assert net.meta["config"] == se.tag(recipe)
    spr_name = se.tag(replace(recipe, steps=recipe.steps[:1]))
    assert (tmp_path / f"spr_2x12_{spr_name}_e2_s0.safetensors").is_file()
    full = replace(recipe, dense=DenseTraining((12, 12), 2))
    want = compact_network(from_torch(run_recipe(full, d.x_train, d.y_train).model))
    assert net.describe() == want.describe()
    for a, b in zip(net.layers, want.layers, strict=True):
        np.testing.assert_array_equal(a.weight, b.weight)
    # A second call reads the cache: same file, no training.
    monkeypatch.setattr(se, "run_recipe", None)
    assert se.prune_config("2x12", 2, 0, data, recipe).describe() == net.describe()
