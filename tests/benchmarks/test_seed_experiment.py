"""The seed experiment's own pieces: L1-ball bounds (sound), the ReLU-stability loss, naming."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.seed_experiment import PruneConfig, l1_ball_bounds, l1_relu_stability, net_file
from pruning.train import linear_layers, make_mlp


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
    loss = l1_relu_stability(0.5, 1.0)(model, x)
    assert -0.5 <= float(loss.detach()) <= 0.5
    loss.backward()
    assert linear_layers(model)[0].weight.grad is not None


def test_names_round_trip() -> None:
    import argparse

    args = argparse.Namespace(epochs=50, seed=0)
    tag = PruneConfig(0.4, 0.8, 0.2, 1).tag()
    assert tag == "n0.4_w0.8_rs0.2_ft10d"
    path = net_file(f"best_2x50_e50_s0_{tag}", args)
    assert path is not None and path.name == f"best_2x50_{tag}_e50_s0.safetensors"
    dense = net_file("dense_2x100_e50_s0", args)
    assert dense is not None and dense.name == "dense_2x100_e50_s0.safetensors"


def test_tags_and_per_arch_image_counts() -> None:
    import argparse

    from benchmarks.seed_experiment import arch_images

    # The learning rate and the symbolic RS loss are in the tag only when not the defaults.
    assert PruneConfig(0.3, 0.7, 0.2, 1, 20).tag() == "n0.3_w0.7_rs0.2_ft20d"
    cfg = PruneConfig(*map(float, "0.2,0.5,0.3,1,10,0.02,8".split(",")))
    assert cfg.tag() == "n0.2_w0.5_rs0.3_ft10d_lr0.02_sym8"
    args = argparse.Namespace(images=20, arch_images=["2x100=10"])
    assert arch_images(args, "2x100") == 10 and arch_images(args, "2x50") == 20
    assert arch_images(argparse.Namespace(images=5), "2x50") == 5


def test_symbolic_rs_loss_uses_the_first_rows_only() -> None:
    from benchmarks.seed_experiment import symbolic_l1_stability

    model = make_mlp(20, [8, 6], 3, seed=3)
    x = torch.rand(6, 20)
    reg = symbolic_l1_stability(0.5, 1.0, 2)
    a = reg(model, x)
    b = reg(model, torch.cat([x[:2], torch.rand(4, 20)]))
    assert float(a.detach()) == float(b.detach()) < 0


def test_grid_points_per_architecture() -> None:
    import pytest

    from benchmarks.seed_experiment import parse_grid

    pts = ["2x50:0.3,0.7,0.2,1,20", "2x100:0.2,0.5,0.3,1,10,0.02", "0.1,0,0"]
    assert [c.tag() for c in parse_grid(pts, "2x50")] == [
        "n0.3_w0.7_rs0.2_ft20d",
        "n0.1_w0_rs0_ft10",
    ]
    assert parse_grid(pts, "2x100")[0].tag() == "n0.2_w0.5_rs0.3_ft10d_lr0.02"
    with pytest.raises(SystemExit):
        parse_grid(pts[:1], "6x100")
