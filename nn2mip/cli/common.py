"""Argument helpers shared by subcommands: argparse types with one-line messages, checks of
input files and output places made before any work starts, progress messages."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nn2mip.errors import InvalidInputError, ModelFileError

MODEL_SUFFIXES = (".safetensors", ".onnx")
# The data sets the commands know; --data is checked against this list by argparse.
DATASETS = ("digits", "mnist")


def nonneg_float(text: str) -> float:
    """argparse type: a finite float >= 0 (eps, regularizer strengths)."""
    v = _float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0 (time limits, learning rates)."""
    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (threads, jobs, epochs, widths)."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return v


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0 (indices, counts where 0 means none or all)."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return v


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def check_model_file(path: str, what: str = "model file") -> Path:
    """An existing, readable ``.safetensors`` or ``.onnx`` file; nothing is parsed yet."""
    p = check_input_file(path, what)
    if p.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{what} {p} must end in {' or '.join(MODEL_SUFFIXES)} (nn2mip reads the "
            ".safetensors files it writes, and ONNX)"
        )
    return p


def check_input_file(path: str, what: str = "input file") -> Path:
    """An existing readable regular file, or a one-line error that says which of these fails."""
    p = Path(path)
    if p.is_dir():
        raise InvalidInputError(f"{what} {p} is a directory; give a file")
    if not p.exists():
        raise InvalidInputError(f"{what} not found: {p}")
    if not p.is_file():
        raise InvalidInputError(f"{what} {p} is not a regular file")
    if not os.access(p, os.R_OK):
        raise InvalidInputError(f"{what} {p} is not readable (permission denied)")
    return p


def check_output_file(
    path: str, option: str, suffixes: Sequence[str] | None = None, overwrite: bool = True
) -> Path:
    """A place a file can be written: not a directory, its nearest existing parent a writable
    directory, and (when given) one of ``suffixes``. Nothing is created."""
    p = Path(path)
    if p.is_dir():
        raise InvalidInputError(f"{option} {p} is a directory; give a file name")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise InvalidInputError(f"{option} {p} must end in {' or '.join(suffixes)}")
    if p.exists():
        if not p.is_file():
            raise InvalidInputError(f"{option} {p} exists and is not a regular file")
        if not overwrite:
            raise InvalidInputError(f"{option} {p} already exists; refusing to overwrite it")
        try:
            with open(p, "ab"):  # opened for writing, nothing written
                pass
        except OSError as err:
            raise InvalidInputError(f"{option} {p} is not writable ({err.strerror})") from None
        return p
    _check_creatable(p, option)
    return p


def check_output_dir(path: str, option: str) -> Path:
    """A directory that exists and is writable, or that can be created."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise InvalidInputError(f"{option} {p} exists and is not a directory")
        _probe(p, p, option)
        return p
    _check_creatable(p, option)
    return p


def _check_creatable(p: Path, option: str) -> None:
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidInputError(f"{option} {p}: {parent} is a file, not a directory")
    _probe(parent, p, option)


def _probe(directory: Path, p: Path, option: str) -> None:
    """Create and remove a temporary file in ``directory``: permission bits do not tell (root
    passes them; read-only and virtual file systems do not)."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".nn2mip-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise InvalidInputError(
            f"{option} {p}: cannot write in {directory} ({err.strerror or err})"
        ) from None


def check_data(name: str, data_dir: str | None) -> str | None:
    """Resolve where ``name``'s files are (MNIST: ``--data-dir``, $NN2MIP_DATA, or the places
    data/README.md names) without loading them; returns the directory to pass on."""
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.datasets import find_mnist_dir

    if name == "mnist":
        return str(find_mnist_dir(data_dir))
    if data_dir is not None:
        raise InvalidInputError(f"--data-dir is only used with --data mnist, not {name}")
    return None


def check_bounds(name: str | None, option: str = "--bounds") -> None:
    """A bound method ``compute_bounds`` knows (``None``: the command's default)."""
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.bounds import bound_methods

    if name is not None and name not in bound_methods():
        raise InvalidInputError(
            f"unknown bound method {option} {name!r}; choose from {', '.join(bound_methods())}"
        )


def load_point(path: str) -> np.ndarray:
    """Read one input point from ``.npy``, or whitespace/comma separated text."""
    p = check_input_file(path, "input file")
    try:
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False).astype(np.float64).reshape(-1)
        return np.array(p.read_text().replace(",", " ").split(), dtype=np.float64)
    except (ValueError, UnicodeDecodeError, EOFError) as err:
        raise InvalidInputError(f"cannot read an input point from {p}: {err}") from None


def save_model(
    net: object, path: str, masks: list | None = None, meta: dict[str, str] | None = None
) -> Path:
    """Write ``net`` by the suffix of ``path``: ``.safetensors`` (float64, masks kept) or
    ``.onnx`` (float32 Gemm/Relu, what other verifiers read; masks are not representable)."""
    if Path(path).suffix.lower() == ".onnx":
        # Imported on use, not at the top: keeps `nn2mip --help` fast.
        from nn2mip.network import Network
        from nn2mip.onnx_io import save_onnx

        assert isinstance(net, Network)
        if masks is not None and any(m is not None for m in masks):
            raise InvalidInputError("an .onnx file cannot hold masks; write .safetensors")
        meta_net = Network(net.layers, meta={**net.meta, **(meta or {})})
        return save_onnx(meta_net, path, dtype=np.float32)
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.serialize import save_network

    return save_network(net, path, masks=masks, meta=meta)  # type: ignore[arg-type]


class Progress:
    """Stage messages with elapsed time on stderr, unless ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self.t0
            print(f"[{elapsed:7.1f} s] {message}", file=sys.stderr, flush=True)


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, default=_jsonable))


def _jsonable(o: object) -> object:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
