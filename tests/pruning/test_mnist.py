"""MNIST IDX reader: a synthetic file always, the real data when ../shared/data is present."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from nn2mip.datasets import load_dataset
from nn2mip.errors import InvalidInputError
from nn2mip.mnist import load_mnist

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_synthetic_idx(tmp_path):
    imgs = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 2, 1]))
    x, y = load_mnist(tmp_path, "test")
    assert x.shape == (3, 784) and x.dtype == np.float64 and x.max() <= 1.0
    assert y.tolist() == [7, 2, 1] and y.dtype == np.int64
    with pytest.raises(InvalidInputError):
        load_mnist(tmp_path, "train")  # files absent
    with pytest.raises(InvalidInputError):
        load_mnist(tmp_path, "valid")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(InvalidInputError):
        load_mnist(tmp_path, "test")


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST IDX files not found at {MNIST}")
def test_real_mnist_test_split():
    x, y = load_mnist(MNIST, "test")
    assert x.shape == (10000, 784) and y.shape == (10000,)
    assert 0.0 <= x.min() and x.max() == 1.0 and set(np.unique(y)) == set(range(10))


def test_dataset_needs_a_directory():
    with pytest.raises(InvalidInputError):
        load_dataset("mnist", None)
