"""MNIST from the original IDX files (``*-idx3-ubyte.gz`` / ``*-idx1-ubyte.gz``), gzip + numpy
only. The data is read from where it lives (e.g. ``../shared/data/mnist/``), never copied."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from nn2mip.datasets import Dataset
from nn2mip.errors import InvalidInputError

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    """One IDX array (magic: two zero bytes, a type code, the number of dimensions)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise InvalidInputError(f"cannot read IDX file {path}: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise InvalidInputError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise InvalidInputError(f"{path}: expected {int(np.prod(dims))} values, got {data.size}")
    return data.reshape(tuple(dims))


def _find(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise InvalidInputError(f"MNIST file {stem}(.gz) not found in {directory}")


def load_mnist(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of the ``train`` or ``test`` split: X float64 (n, 784) in [0, 1], y int64."""
    if split not in _FILES:
        raise InvalidInputError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidInputError(f"MNIST directory not found: {directory}")
    img_stem, lab_stem = _FILES[split]
    images = _read_idx(_find(directory, img_stem))
    labels = _read_idx(_find(directory, lab_stem))
    if images.shape[0] != labels.shape[0]:
        raise InvalidInputError(
            f"{directory}: {images.shape[0]} images but {labels.shape[0]} labels"
        )
    x = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return x, labels.astype(np.int64)


def load_mnist_dataset(directory: str | Path) -> Dataset:
    """The standard MNIST split (60,000 train, 10,000 test) as a ``Dataset``."""
    x_train, y_train = load_mnist(directory, "train")
    x_test, y_test = load_mnist(directory, "test")
    return Dataset("mnist", x_train, y_train, x_test, y_test)
