"""End-to-end CLI tests: the demo, encode, and one-line errors with non-zero exits."""

from __future__ import annotations

import json

import numpy as np

from nn2mip.cli import main
from nn2mip.network import AffineLayer, Network
from nn2mip.serialize import save_network


def test_demo_quick_json(capsys, tmp_path):
    rc = main(["demo", "--quick", "--json", "--save-dir", str(tmp_path)])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    dense, pruned = rep["models"]
    assert pruned["median_binaries"] < dense["median_binaries"]
    assert pruned["neurons"] < dense["neurons"]
    for m in (dense, pruned):
        decided = m["adversarial"] + m["robust"]
        assert decided == len(rep["images"])
        # every adversarial verdict carries a witness that passed both forward passes
        assert m["witnesses_checked"] == m["adversarial"]
    assert rep["median_speedup"] > 0
    assert (tmp_path / "pruned.safetensors").is_file()


def test_encode_writes_mps(tmp_path, capsys, digits_nets):
    net, _ = digits_nets["structured"]
    model = save_network(net, tmp_path / "m.safetensors")
    rc = main(
        [
            "encode",
            str(model),
            "--index",
            "0",
            "--eps",
            "0.05",
            "--target",
            "1",
            "--out",
            str(tmp_path / "m.mps"),
            "--json",
        ]
    )
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["binaries"] == info["unstable"] and info["nonzeros"] > 0
    assert (tmp_path / "m.mps").read_text().startswith("NAME")


def _errors(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys, digits_nets):
    net, _ = digits_nets["dense"]
    good = save_network(net, tmp_path / "good.safetensors")
    point = tmp_path / "p.txt"
    point.write_text(" ".join(["0.5"] * 10))
    bad_w = net.layers[0].weight.copy()
    bad_w[0, 0] = np.nan
    nan_file = tmp_path / "nan.safetensors"
    # Bypass the IR's own check to write a corrupt file, as another tool might.
    layer = object.__new__(AffineLayer)
    object.__setattr__(layer, "weight", bad_w)
    object.__setattr__(layer, "bias", net.layers[0].bias)
    object.__setattr__(layer, "relu", True)
    corrupt = object.__new__(Network)
    object.__setattr__(corrupt, "layers", (layer, *net.layers[1:]))
    object.__setattr__(corrupt, "meta", {})
    save_network(corrupt, nan_file)
    cases = {
        "missing model": [
            "encode",
            str(tmp_path / "nope.safetensors"),
            "--index",
            "0",
            "--eps",
            "0.1",
        ],
        "wrong input size": ["encode", str(good), "--input", str(point), "--eps", "0.1"],
        "nan weights": ["encode", str(nan_file), "--index", "0", "--eps", "0.1"],
        "index out of range": ["encode", str(good), "--index", "99999", "--eps", "0.1"],
    }
    for what, argv in cases.items():
        rc, err = _errors(capsys, argv)
        assert rc != 0, what
        assert err.startswith("nn2mip: error:") and "\n" not in err, (what, err)
        assert "Traceback" not in err
    assert main(["encode", str(good), "--index", "0", "--eps", "-0.1"]) == 2
    assert "must be a finite number >= 0" in capsys.readouterr().err
