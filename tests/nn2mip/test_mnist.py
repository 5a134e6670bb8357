"""MNIST IDX reader, checked against the ERAN CSV copy and a VNN-COMP network's accuracy."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from nn2mip.errors import InvalidInputError
from nn2mip.mnist import load_mnist

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MNIST = DATA / "mnist"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"shared data not found at {path} (expected ../shared/data beside the checkout)"
        )
    return path


def _write_idx(directory: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    n = images.shape[0]
    with gzip.open(directory / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.astype(np.uint8).tobytes())
    (directory / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes()
    )


def test_synthetic_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28))
    labels = rng.integers(0, 10, size=7)
    _write_idx(tmp_path, "train", images, labels)
    x, y = load_mnist(tmp_path, "train")
    assert x.shape == (7, 784) and x.dtype == np.float64
    np.testing.assert_array_equal(x, images.reshape(7, -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    x3, y3 = load_mnist(tmp_path, "train", limit=3)
    assert x3.shape == (3, 784) and y3.tolist() == labels[:3].tolist()


def test_bad_inputs(tmp_path):
    with pytest.raises(InvalidInputError, match="split"):
        load_mnist(tmp_path, "valid")
    with pytest.raises(InvalidInputError, match="not found"):
        load_mnist(tmp_path / "missing", "test")
    with pytest.raises(InvalidInputError, match="t10k-images"):
        load_mnist(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 1234, 1, 28, 28))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 1) + b"\x03")
    with pytest.raises(InvalidInputError, match="magic"):
        load_mnist(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, 2, 28, 28))
    with pytest.raises(InvalidInputError, match="promises"):
        load_mnist(tmp_path, "test")


@pytest.fixture(scope="module")
def mnist_test():
    _need(MNIST / "t10k-images-idx3-ubyte.gz")
    return load_mnist(MNIST, "test")


def test_real_test_split(mnist_test):
    x, y = mnist_test
    assert x.shape == (10000, 784) and y.shape == (10000,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_matches_eran_csv(mnist_test):
    rows = np.loadtxt(_need(MNIST / "eran_mnist_test.csv"), delimiter=",", dtype=np.int64)
    x, y = mnist_test
    np.testing.assert_array_equal(y[: len(rows)], rows[:, 0])
    np.testing.assert_array_equal(x[: len(rows)], rows[:, 1:] / 255.0)


def test_train_labels():
    _need(MNIST / "train-labels-idx1-ubyte.gz")
    _need(MNIST / "train-images-idx3-ubyte.gz")
    x, y = load_mnist(MNIST, "train", limit=5)
    assert x.shape == (5, 784)
    assert y.tolist() == [5, 0, 4, 1, 9]


def test_vnncomp_256x2_accuracy_on_first_1000(mnist_test):
    from nn2mip.onnx_io import load_onnx

    net = load_onnx(_need(DATA / "vnncomp_mnist_fc" / "onnx" / "mnist-net_256x2.onnx"))
    x, y = mnist_test
    acc = float(np.mean(net.predict(x[:1000]) == y[:1000]))
    assert 0.97 <= acc <= 1.0, acc


def test_load_mnist_dataset(tmp_path):
    from nn2mip.datasets import load_mnist_dataset  # the IDX reader's Dataset wrapper

    rng = np.random.default_rng(1)
    for prefix, n in (("train", 5), ("t10k", 3)):
        _write_idx(tmp_path, prefix, rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n))
    ds = load_mnist_dataset(tmp_path)
    assert ds.x_train.shape == (5, 784) and ds.x_test.shape == (3, 784)
