"""Reader for MNIST in its original IDX format (``.gz`` or uncompressed), numpy only."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from nn2mip.errors import InvalidInputError

_PREFIX = {"train": "train", "test": "t10k"}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def _find(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise InvalidInputError(f"MNIST file {stem}[.gz] not found in {directory}")


def _read_idx(path: Path, magic: int, limit: int | None) -> np.ndarray:
    """Read an IDX file of unsigned bytes: big-endian magic, dimension sizes, then the data."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise InvalidInputError(f"cannot read {path}: {err}") from None
    ndim = 3 if magic == _IMAGES_MAGIC else 1
    header = 4 * (1 + ndim)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise InvalidInputError(f"{path} is not an IDX file with magic number {magic}")
    dims = [int.from_bytes(raw[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(ndim)]
    count = int(np.prod(dims))
    if len(raw) - header != count:
        raise InvalidInputError(
            f"{path}: header promises {count} bytes of data but the file has {len(raw) - header}"
        )
    data = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return data if limit is None else data[:limit]


def load_mnist(
    directory: str | Path, split: str = "test", limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST ``split`` ("train" or "test") from IDX files in ``directory``.

    Returns ``(X, y)``: ``X`` float64 of shape (n, 784) with pixels scaled to [0, 1] (``/255``)
    in row-major order, ``y`` int64 labels. ``limit`` keeps only the first ``limit`` examples.
    """
    if split not in _PREFIX:
        raise InvalidInputError(f"MNIST split must be 'train' or 'test', got {split!r}")
    if limit is not None and limit < 0:
        raise InvalidInputError(f"limit must be >= 0, got {limit}")
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidInputError(f"MNIST directory not found: {directory}")
    prefix = _PREFIX[split]
    images = _read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"), _IMAGES_MAGIC, limit)
    labels = _read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"), _LABELS_MAGIC, limit)
    if images.shape[0] != labels.shape[0]:
        raise InvalidInputError(
            f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels"
        )
    x = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return x, labels.astype(np.int64)
