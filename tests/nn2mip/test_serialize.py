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
