"""Data sets. The embedded default is scikit-learn's bundled 8x8 digits (no download)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nn2mip.errors import InvalidInputError
from nn2mip.mnist import load_mnist


@dataclass(frozen=True)
class Dataset:
    """A train/test split with inputs scaled to [0, 1] (float64) and integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, pixels scaled from 0..16 to [0, 1], split reproducibly."""
    from sklearn.datasets import load_digits as _sk_digits  # scikit-learn is a heavy import

    if not 0.0 < test_fraction < 1.0:  # both splits must be non-empty (num_classes reads both)
        raise InvalidInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = _sk_digits()
    x = bunch.data.astype(np.float64) / 16.0
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    if not 0 < n_test < len(y):
        raise InvalidInputError(f"test_fraction {test_fraction} leaves a split of the digits empty")
    test, train = perm[:n_test], perm[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test])


# An environment variable naming the MNIST directory (or a directory with an ``mnist/`` in it).
DATA_ENV = "NN2MIP_DATA"
_MNIST_FILE = "t10k-images-idx3-ubyte"
_REPO = Path(__file__).resolve().parents[1]


def mnist_search_path(path: str | Path | None = None) -> list[Path]:
    """Where MNIST is looked for, in order: ``path`` alone when given; else ``$NN2MIP_DATA``
    (and its ``mnist/``), then ``data/mnist`` in the checkout, then ``../shared/data/mnist``
    beside it (where data/README.md says the shared data lives)."""
    if path is not None:
        return [Path(path)]
    places = []
    env = os.environ.get(DATA_ENV)
    if env:
        places += [Path(env), Path(env) / "mnist"]
    places += [_REPO / "data" / "mnist", _REPO.parent / "shared" / "data" / "mnist"]
    return places


def find_mnist_dir(path: str | Path | None = None) -> Path:
    """The first directory of ``mnist_search_path(path)`` holding the MNIST test images;
    the error lists every place looked at."""
    places = mnist_search_path(path)
    for d in places:
        if any((d / f"{_MNIST_FILE}{ext}").is_file() for ext in (".gz", "")):
            return d
    if path is not None:
        p = Path(path)
        why = (
            "does not exist"
            if not p.exists()
            else "is not a directory"
            if not p.is_dir()
            else (f"holds no {_MNIST_FILE}[.gz]")
        )
        raise InvalidInputError(f"MNIST directory {p} {why}")
    raise InvalidInputError(
        f"MNIST IDX files not found; looked in {', '.join(str(d) for d in places)}; give "
        f"--data-dir or set {DATA_ENV}"
    )


def load_dataset(name: str, path: str | None = None) -> Dataset:
    """Load a data set by name: ``digits`` (embedded) or ``mnist`` (IDX files in ``path``, or
    found by ``find_mnist_dir``)."""
    if name == "digits":
        return load_digits()
    if name == "mnist":
        return load_mnist_dataset(find_mnist_dir(path))
    raise InvalidInputError(f"unknown data set {name!r}; choose 'digits' or 'mnist'")


def load_mnist_dataset(directory: str | Path) -> Dataset:
    """Both MNIST splits (IDX files in ``directory``) as a ``Dataset``."""
    x_train, y_train = load_mnist(directory, "train")
    x_test, y_test = load_mnist(directory, "test")
    return Dataset("mnist", x_train, y_train, x_test, y_test)
