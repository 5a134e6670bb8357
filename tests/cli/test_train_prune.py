"""``nn2mip train`` and ``nn2mip prune`` through ``nn2mip.cli.main``."""

from __future__ import annotations

import json

import pytest

from nn2mip.cli import main
from nn2mip.serialize import load_network_and_masks


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "dense.safetensors"
    rc = main(
        [
            "train",
            "--hidden",
            "16",
            "16",
            "--epochs",
            "3",
            "--stability",
            "0.1",
            "--stability-loss",
            "ratio",
            "--l1",
            "1e-4",
            "--out",
            str(path),
        ]
    )
    assert rc == 0
    return path


def test_train_writes_a_model(model_file):
    net, masks = load_network_and_masks(model_file)
    assert net.hidden_sizes == [16, 16]
    assert net.meta["data"] == "digits"
    assert "stability_loss=ratio" in net.meta["training"]
    assert float(net.meta["test_accuracy"]) > 0.3


def test_train_with_spr_and_group_lasso(tmp_path):
    out = tmp_path / "r.safetensors"
    rc = main(
        [
            "train",
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--spr-lambda",
            "0.01",
            "--group-lasso",
            "0.01",
            "--optimizer",
            "sgd",
            "--lr",
            "0.01",
            "--compact",
            "--out",
            str(out),
        ]
    )
    assert rc == 0 and out.is_file()


def test_train_with_symbolic_l1_stability_on_some_rows(tmp_path):
    out = tmp_path / "s.safetensors"
    argv = ["train", "--hidden", "12", "12", "--epochs", "1", "--out", str(out)]
    stab = ["--stability", "1", "--stability-eps", "0.5", "--stability-norm", "1"]
    stab += ["--stability-bounds", "symbolic", "--stability-rows", "4", "--stability-loss", "ratio"]
    assert main([*argv, *stab]) == 0
    net, _ = load_network_and_masks(out)
    assert "stability_bounds=symbolic" in net.meta["training"]
    assert "stability_rows=4" in net.meta["training"]


def test_train_adversarially_reports_pgd_accuracy(tmp_path, capsys):
    out = tmp_path / "a.safetensors"
    argv = ["train", "--hidden", "12", "--epochs", "1", "--out", str(out), "--json"]
    adv = ["--adv-eps", "2", "--adv-norm", "1", "--adv-steps", "3", "--adv-rows", "16"]
    assert main([*argv, *adv]) == 0
    info = json.loads(capsys.readouterr().out)
    assert 0.0 <= info["pgd_accuracy"] <= info["test_accuracy"] + 0.05
    net, _ = load_network_and_masks(out)
    assert "adv_eps=2.0" in net.meta["training"] and "adv_norm=1" in net.meta["training"]


@pytest.mark.parametrize("method", ["global-magnitude", "spr", "synflow"])
def test_prune_compacts(tmp_path, model_file, method):
    out = tmp_path / "p.safetensors"
    rc = main(
        [
            "prune",
            str(model_file),
            "--method",
            method,
            "--amount",
            "0.5",
            "--finetune-epochs",
            "1",
            "--epochs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    net, masks = load_network_and_masks(out)
    assert all(m is None for m in masks)
    assert method in net.meta["pruning"]
    if method == "spr":
        assert net.num_hidden_neurons <= 16


def test_prune_keep_masks(tmp_path, model_file):
    out = tmp_path / "p.safetensors"
    rc = main(
        [
            "prune",
            str(model_file),
            "--method",
            "magnitude",
            "--amount",
            "0.5",
            "--finetune-epochs",
            "1",
            "--keep-masks",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    net, masks = load_network_and_masks(out)
    assert net.hidden_sizes == [16, 16] and all(m is not None for m in masks)


@pytest.mark.parametrize(
    "argv",
    [
        ["prune", "MISSING", "--method", "l1", "--amount", "0.5"],
        ["prune", "MODEL", "--method", "nope", "--amount", "0.5"],
        ["prune", "MODEL", "--method", "l1", "--amount", "1.0"],
        ["prune", "MODEL", "--method", "l1", "--amount", "-0.1"],
        ["prune", "MODEL", "--method", "l1", "--amount", "0.5", "--optimizer", "rmsprop"],
        ["prune", "MODEL", "--method", "l1", "--amount", "0.5", "--data", "cifar"],
        ["train", "--epochs", "0"],
        ["train", "--data", "mnist", "--data-dir", "MISSING"],
        ["train", "--spr-alpha", "1.5"],
        ["train", "--stability-loss", "square"],
        ["train", "--stability-norm", "2", "--stability-bounds", "symbolic"],
        ["train", "--stability-norm", "1"],  # interval bounds are L-inf only
        ["train", "--stability-bounds", "lp"],
        ["train", "--stability-rows", "-1"],
        ["train", "--adv-eps", "0.1", "--adv-norm", "2"],
        ["train", "--adv-eps", "0.1", "--adv-steps", "0"],
        ["train", "--adv-eps", "0.1", "--adv-weight", "1.5"],
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, model_file, capsys, argv):
    argv = [
        str(model_file) if a == "MODEL" else str(tmp_path / "x") if a == "MISSING" else a
        for a in argv
    ]
    rc = main([*argv, "--out", str(tmp_path / "o.safetensors")])
    assert rc != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("nn2mip: error:") and "\n" not in err
