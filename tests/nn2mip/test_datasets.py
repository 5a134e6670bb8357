"""Data sets: the embedded digits split against scikit-learn's own copy, MNIST through
``load_dataset`` (synthetic IDX files always, the real files when the shared data is there)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_digits

from nn2mip import datasets
from nn2mip.datasets import Dataset, load_dataset, load_digits
from nn2mip.errors import InvalidInputError

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def _pairs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows of (pixels, label), sorted, so that two splits can be compared as multisets."""
    rows = np.column_stack([x, y])
    return rows[np.lexsort(rows.T[::-1])]


def test_digits_is_a_scaled_partition_of_scikit_learns_digits():
    d = load_digits()
    assert d.name == "digits"
    assert d.x_train.shape == (1348, 64) and d.x_test.shape == (449, 64)  # 449 = round(0.25 * 1797)
    assert d.y_train.shape == (1348,) and d.y_test.shape == (449,)
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    assert d.x_test.dtype == np.float64 and d.y_test.dtype == np.int64
    assert d.num_features == 64 and d.num_classes == 10
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y).tolist()) == set(range(10))  # every class on both sides
    ref = sk_digits()
    np.testing.assert_array_equal(
        _pairs(np.vstack([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])),
        _pairs(ref.data / 16.0, ref.target),
    )


def test_digits_split_is_reproducible_and_follows_seed_and_fraction():
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    half = load_digits(test_fraction=0.5)
    assert len(half.y_test) == round(0.5 * 1797) and len(half.y_train) + len(half.y_test) == 1797


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan"), 1e-4])
def test_digits_refuses_a_fraction_that_empties_a_split(fraction):
    with pytest.raises(InvalidInputError, match="test_fraction"):
        load_digits(test_fraction=fraction)


def test_load_dataset_by_name_and_bad_names(monkeypatch, tmp_path):
    d = load_dataset("digits")
    np.testing.assert_array_equal(d.x_train, load_digits().x_train)
    with pytest.raises(InvalidInputError, match="unknown data set 'cifar10'"):
        load_dataset("cifar10")
    with pytest.raises(InvalidInputError, match="unknown data set"):
        load_dataset("Digits")
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_dataset("mnist", "/nonexistent/mnist")
    # Nothing where the search looks: the error names every place and both ways to give it.
    monkeypatch.setattr(datasets, "_REPO", tmp_path / "repo")
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "env"))
    with pytest.raises(InvalidInputError, match="looked in .*env.*--data-dir or set NN2MIP_DATA"):
        load_dataset("mnist")


def _write_idx(directory: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    n, rows, cols = images.shape
    with gzip.open(directory / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes())
    (directory / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes()
    )


def test_mnist_by_name_reads_both_splits_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    tr_x, te_x = rng.integers(0, 256, (9, 28, 28)), rng.integers(0, 256, (4, 28, 28))
    tr_y, te_y = np.arange(9) % 10, np.array([9, 0, 3, 3])
    _write_idx(tmp_path, "train", tr_x, tr_y)
    _write_idx(tmp_path, "t10k", te_x, te_y)
    d = load_dataset("mnist", str(tmp_path))
    assert isinstance(d, Dataset) and d.name == "mnist"
    np.testing.assert_array_equal(d.x_train, tr_x.reshape(9, 784) / 255.0)
    np.testing.assert_array_equal(d.x_test, te_x.reshape(4, 784) / 255.0)
    np.testing.assert_array_equal(d.y_train, tr_y)
    np.testing.assert_array_equal(d.y_test, te_y)
    assert d.num_features == 784 and d.num_classes == 10
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(InvalidInputError, match="t10k-labels"):
        load_dataset("mnist", str(tmp_path))


def test_real_mnist_shapes_ranges_and_label_counts():
    if not MNIST.is_dir():
        pytest.skip(f"MNIST not found at {MNIST} (expected ../shared/data beside the checkout)")
    d = load_dataset("mnist", str(MNIST))
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert d.x_train.dtype == np.float64 and d.y_test.dtype == np.int64
    assert d.x_test.min() == 0.0 and d.x_test.max() == 1.0
    assert d.num_classes == 10
    # The published per-class counts of the two MNIST splits.
    assert np.bincount(d.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(d.y_train).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]  # fmt: skip
