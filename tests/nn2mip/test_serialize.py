import numpy as np
import pytest

from nn2mip.errors import ModelFileError
from nn2mip.network import network_from_arrays
from nn2mip.serialize import load_network, load_network_and_masks, save_network


def test_round_trip_with_masks_and_meta(tmp_path, rng):
    net = network_from_arrays(
        [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))], [rng.normal(size=4), rng.normal(size=2)]
    )
    mask = rng.random((4, 3)) > 0.5
    path = save_network(net, tmp_path / "n.safetensors", masks=[mask, None], meta={"acc": "0.9"})
    back, masks = load_network_and_masks(path)
    x = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    np.testing.assert_array_equal(masks[0], mask)
    assert masks[1] is None and back.meta["acc"] == "0.9"


def test_bad_files(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_network(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelFileError):
        load_network(junk)
    # A pickle is never executed: it is simply not a model file.
    pkl = tmp_path / "model.pt"
    pkl.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelFileError):
        load_network(pkl)


def test_metadata_that_disagrees_with_the_tensors_is_refused(tmp_path, rng):
    """A relu list shorter than the layers once loaded a truncated network: now refused."""
    import json

    from safetensors.numpy import save_file

    net = network_from_arrays(
        [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))], [rng.normal(size=4), rng.normal(size=2)]
    )
    tensors = {}
    for i, layer in enumerate(net.layers):
        tensors[f"layers.{i}.weight"] = layer.weight
        tensors[f"layers.{i}.bias"] = layer.bias
    base = {"format": "nn2mip-network", "version": "1"}
    cases = {
        "relu": {"relu": json.dumps([True])},
        "relu ": {"relu": "[true, "},
        "sizes": {"relu": json.dumps([True, False]), "sizes": "[3, 4, 3]"},
        "version": {"relu": json.dumps([True, False]), "version": "2"},
    }
    for field, header in cases.items():
        path = tmp_path / "m.safetensors"
        save_file(tensors, str(path), metadata={**base, **header})
        with pytest.raises(ModelFileError, match=f"{path}.*'{field.strip()}'"):
            load_network(path)
    # The same tensors with consistent metadata load as the network they hold.
    save_file(tensors, str(path), metadata={**base, "relu": json.dumps([True, False])})
    back = load_network(path)
    assert [ly.relu for ly in back.layers] == [True, False]
    np.testing.assert_array_equal(back.layers[1].weight, net.layers[1].weight)


def test_sizes_recorded_and_onnx_accepted(tmp_path, rng):
    from nn2mip.onnx_io import save_onnx

    net = network_from_arrays([rng.normal(size=(4, 3))], [rng.normal(size=4)])
    path = save_network(net, tmp_path / "n.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata()["sizes"] == "[3, 4]"
    onnx_path = save_onnx(net, tmp_path / "n.onnx", dtype=np.float64)
    back, masks = load_network_and_masks(onnx_path)
    assert masks == [None]
    np.testing.assert_array_equal(back.layers[0].weight, net.layers[0].weight)
