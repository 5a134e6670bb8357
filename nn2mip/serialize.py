"""Saving and loading networks without unpickling: safetensors tensors + JSON metadata.

A model file holds ``layers.{i}.weight`` / ``layers.{i}.bias`` (float64) and, for networks still
being trained with masks, optional ``layers.{i}.mask`` entries. The metadata records which layers
have a ReLU and free-form string fields (data set, training method, accuracy, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from nn2mip.errors import ModelFileError
from nn2mip.network import AffineLayer, Network

FORMAT = "nn2mip-network"
VERSION = "1"


def save_network(
    network: Network,
    path: str | Path,
    masks: list[np.ndarray | None] | None = None,
    meta: dict[str, str] | None = None,
) -> Path:
    """Write ``network`` (and optional per-layer weight masks) to a ``.safetensors`` file."""
    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    for i, layer in enumerate(network.layers):
        tensors[f"layers.{i}.weight"] = np.ascontiguousarray(layer.weight)
        tensors[f"layers.{i}.bias"] = np.ascontiguousarray(layer.bias)
        if masks is not None and masks[i] is not None:
            tensors[f"layers.{i}.mask"] = np.ascontiguousarray(masks[i], dtype=np.uint8)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "relu": json.dumps([layer.relu for layer in network.layers]),
    }
    for key, value in {**network.meta, **(meta or {})}.items():
        header[f"meta.{key}"] = str(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=header)
    return path


def load_network_and_masks(path: str | Path) -> tuple[Network, list[np.ndarray | None]]:
    """Read a file written by ``save_network``; masks are ``None`` where none was stored."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"cannot read {path} as an nn2mip model: {err}") from None
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an nn2mip model file (no '{FORMAT}' header)")
    relu = json.loads(header["relu"])
    layers, masks = [], []
    for i, has_relu in enumerate(relu):
        try:
            w, b = tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]
        except KeyError:
            raise ModelFileError(f"{path}: layer {i} is missing its weight or bias") from None
        layers.append(AffineLayer(w, b, relu=bool(has_relu)))
        m = tensors.get(f"layers.{i}.mask")
        masks.append(None if m is None else m.astype(bool))
    meta = {k[5:]: v for k, v in header.items() if k.startswith("meta.")}
    return Network(tuple(layers), meta=meta), masks


def load_network(path: str | Path) -> Network:
    """Load a network from an nn2mip ``.safetensors`` file or an ``.onnx`` file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        try:
            from nn2mip.onnx_io import load_onnx
        except ImportError:
            raise ModelFileError("ONNX import is not available in this installation") from None
        return load_onnx(path)
    return load_network_and_masks(path)[0]
