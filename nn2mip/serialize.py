"""Saving and loading networks without unpickling: safetensors tensors + JSON metadata.

A model file holds ``layers.{i}.weight`` / ``layers.{i}.bias`` (float64) and, for networks still
being trained with masks, optional ``layers.{i}.mask`` entries. The metadata records which layers
have a ReLU and free-form string fields (data set, training method, accuracy, ...).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from nn2mip.errors import ModelFileError, Nn2mipError
from nn2mip.network import AffineLayer, Network
from nn2mip.onnx_io import load_onnx

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
        # Checked on load against the tensors: a file must describe one consistent network.
        "sizes": json.dumps([network.input_size] + [ly.out_features for ly in network.layers]),
    }
    for key, value in {**network.meta, **(meta or {})}.items():
        header[f"meta.{key}"] = str(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=header)
    return path


_TENSOR_NAME = re.compile(r"layers\.(0|[1-9][0-9]*)\.(weight|bias|mask)")
_HEADER_KEYS = ("format", "version", "relu", "sizes")


def load_network_and_masks(path: str | Path) -> tuple[Network, list[np.ndarray | None]]:
    """Read a file written by ``save_network`` (or an ``.onnx`` file, which has no masks);
    masks are ``None`` where none was stored.

    Every field is checked against every other (the ``relu`` list against the layer tensors,
    shapes against each other and against the recorded ``sizes``, tensor dtypes, mask values):
    a file that does not describe exactly one consistent network is refused with a
    ``ModelFileError`` naming the file and the field, never loaded as some other network.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        net = _load_onnx(path)
        return net, [None] * len(net.layers)
    _check_readable(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, OverflowError) as err:
        raise ModelFileError(
            f"cannot read {path} as an nn2mip .safetensors model ({err}); nn2mip reads the "
            ".safetensors files it writes and .onnx files"
        ) from None
    return _network_from_file(path, header, tensors)


def _check_readable(path: Path) -> None:
    if path.is_dir():
        raise ModelFileError(f"model path is a directory, not a file: {path}")
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")


def _network_from_file(
    path: Path, header: dict[str, str], tensors: dict[str, np.ndarray]
) -> tuple[Network, list[np.ndarray | None]]:
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an nn2mip model file (no '{FORMAT}' header)")
    if header.get("version") != VERSION:
        raise ModelFileError(
            f"{path}: field 'version' is {header.get('version')!r}; this nn2mip reads version "
            f"{VERSION}"
        )
    extra = sorted(k for k in header if k not in _HEADER_KEYS and not k.startswith("meta."))
    if extra:
        raise ModelFileError(f"{path}: unknown metadata field {extra[0]!r}")
    relu = _json_field(path, header, "relu")
    if not isinstance(relu, list) or not all(isinstance(r, bool) for r in relu) or not relu:
        raise ModelFileError(
            f"{path}: field 'relu' must be a non-empty JSON list of true/false, got "
            f"{header['relu'][:60]!r}"
        )
    n = len(relu)
    for name in tensors:
        m = _TENSOR_NAME.fullmatch(name)
        if m is None:
            raise ModelFileError(f"{path}: unexpected tensor {name!r}")
        if int(m.group(1)) >= n:
            raise ModelFileError(
                f"{path}: tensor {name!r} has no entry in field 'relu', which lists {n} layer(s)"
            )
    layers, masks = [], []
    for i, has_relu in enumerate(relu):
        w, b = tensors.get(f"layers.{i}.weight"), tensors.get(f"layers.{i}.bias")
        if w is None or b is None:
            raise ModelFileError(
                f"{path}: field 'relu' lists {n} layers but layer {i} has no weight or bias"
            )
        for name, t, ndim in ((f"layers.{i}.weight", w, 2), (f"layers.{i}.bias", b, 1)):
            if t.dtype.kind != "f":
                raise ModelFileError(f"{path}: tensor {name!r} has dtype {t.dtype}, not float")
            if t.ndim != ndim or 0 in t.shape:
                raise ModelFileError(
                    f"{path}: tensor {name!r} has shape {t.shape}; expected a non-empty "
                    f"{ndim}-D array"
                )
            if not np.all(np.isfinite(t)):
                raise ModelFileError(f"{path}: tensor {name!r} holds NaN or infinite values")
        if b.shape[0] != w.shape[0]:
            raise ModelFileError(
                f"{path}: tensor 'layers.{i}.bias' has {b.shape[0]} entries but "
                f"'layers.{i}.weight' has {w.shape[0]} rows"
            )
        if i and w.shape[1] != layers[-1].out_features:
            raise ModelFileError(
                f"{path}: tensor 'layers.{i}.weight' takes {w.shape[1]} inputs but layer "
                f"{i - 1} has {layers[-1].out_features} outputs"
            )
        layers.append(AffineLayer(w, b, relu=has_relu))
        masks.append(_mask(path, tensors.get(f"layers.{i}.mask"), i, w.shape))
    sizes = [layers[0].in_features] + [layer.out_features for layer in layers]
    if "sizes" in header and _json_field(path, header, "sizes") != sizes:
        raise ModelFileError(
            f"{path}: field 'sizes' is {header['sizes'][:80]} but the tensors give {sizes}"
        )
    meta = {k[5:]: v for k, v in header.items() if k.startswith("meta.")}
    try:
        return Network(tuple(layers), meta=meta), masks
    except Nn2mipError as err:
        raise ModelFileError(f"{path}: {err}") from None


def _json_field(path: Path, header: dict[str, str], key: str) -> object:
    if key not in header:
        raise ModelFileError(f"{path}: metadata field {key!r} is missing")
    try:
        return json.loads(header[key])
    except (ValueError, RecursionError) as err:
        raise ModelFileError(f"{path}: metadata field {key!r} is not valid JSON ({err})") from None


def _mask(path: Path, m: np.ndarray | None, i: int, shape: tuple[int, ...]) -> np.ndarray | None:
    if m is None:
        return None
    name = f"layers.{i}.mask"
    if m.shape != shape:
        raise ModelFileError(
            f"{path}: tensor {name!r} has shape {m.shape} but the weight has shape {shape}"
        )
    if m.dtype.kind not in "bui" or not np.all((m == 0) | (m == 1)):
        raise ModelFileError(f"{path}: tensor {name!r} must hold only 0 and 1")
    return m.astype(bool)


def _load_onnx(path: Path) -> Network:
    _check_readable(path)
    return load_onnx(path)


def load_network(path: str | Path) -> Network:
    """Load a network from an nn2mip ``.safetensors`` file or an ``.onnx`` file."""
    return load_network_and_masks(path)[0]
