"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nn2mip.errors import InvalidInputError


def nonneg_float(text: str) -> float:
    """argparse type: a finite float >= 0 (eps, time limits)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def positive_float(text: str) -> float:
    v = nonneg_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


def load_point(path: str) -> np.ndarray:
    """Read one input point from ``.npy``, or whitespace/comma separated text."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"input file not found: {p}")
    try:
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False).astype(np.float64).reshape(-1)
        return np.array(p.read_text().replace(",", " ").split(), dtype=np.float64)
    except ValueError as err:
        raise InvalidInputError(f"cannot read input point from {p}: {err}") from None


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
