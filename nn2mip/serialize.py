"""Saving and loading networks without unpickling: safetensors tensors + JSON metadata.

A model file holds ``layers.{i}.weight`` / ``layers.{i}.bias`` (float64) and, for networks still
being trained with masks, optional ``layers.{i}.mask`` entries. A sparse map (a lowered
convolution) is stored as its CSR arrays ``layers.{i}.weight.data`` / ``.indices`` / ``.indptr``
instead of ``layers.{i}.weight`` (its shape: the bias length by the previous layer's outputs),
and a max pooling layer's groups as ``layers.{i}.groups.index`` / ``.start`` (int64). The
metadata records which layers have a ReLU and free-form string fields (data set, training
method, accuracy, ...).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from nn2mip.errors import ModelFileError, Nn2mipError
from nn2mip.network import AffineLayer, MaxGroups, Network
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
        if layer.is_sparse:
            w = layer.weight
            tensors[f"layers.{i}.weight.data"] = np.ascontiguousarray(w.data, dtype=np.float64)
            tensors[f"layers.{i}.weight.indices"] = np.ascontiguousarray(w.indices, dtype=np.int64)
            tensors[f"layers.{i}.weight.indptr"] = np.ascontiguousarray(w.indptr, dtype=np.int64)
        else:
            tensors[f"layers.{i}.weight"] = np.ascontiguousarray(layer.weight)
        tensors[f"layers.{i}.bias"] = np.ascontiguousarray(layer.bias)
        if layer.groups is not None:
            tensors[f"layers.{i}.groups.index"] = layer.groups.index
            tensors[f"layers.{i}.groups.start"] = layer.groups.start
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


_TENSOR_NAME = re.compile(
    r"layers\.(0|[1-9][0-9]*)\.(weight|bias|mask|weight\.data|weight\.indices|weight\.indptr"
    r"|groups\.index|groups\.start)"
)
_CSR_PARTS = ("data", "indices", "indptr")
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
        csr = [tensors.get(f"layers.{i}.weight.{part}") for part in _CSR_PARTS]
        if any(t is not None for t in csr):
            if w is not None:
                raise ModelFileError(
                    f"{path}: layer {i} has both a dense 'weight' and sparse 'weight.*' tensors"
                )
            if b is None or b.ndim != 1:
                raise ModelFileError(f"{path}: layer {i} has a sparse weight but no 1-D bias")
            cols = int(header_sizes(path, header)[0]) if not i else layers[-1].out_features
            w = _sparse_weight(path, i, csr, (b.shape[0], cols))
        if w is None or b is None:
            raise ModelFileError(
                f"{path}: field 'relu' lists {n} layers but layer {i} has no weight or bias"
            )
        checks = [(f"layers.{i}.bias", b, 1)]
        if not sp.issparse(w):
            checks.insert(0, (f"layers.{i}.weight", w, 2))
        for name, t, ndim in checks:
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
        groups = _groups(path, tensors, i, w.shape[0])
        if groups is not None and has_relu:
            raise ModelFileError(
                f"{path}: layer {i} has max groups but field 'relu' gives it a ReLU too"
            )
        layers.append(AffineLayer(w, b, relu=has_relu, groups=groups))
        mask = tensors.get(f"layers.{i}.mask")
        if mask is not None and sp.issparse(w):
            raise ModelFileError(f"{path}: tensor 'layers.{i}.mask' on a sparse layer")
        masks.append(_mask(path, mask, i, w.shape))
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


def header_sizes(path: Path, header: dict[str, str]) -> list[int]:
    """The recorded layer sizes (input first): a sparse first layer takes its width from it."""
    sizes = _json_field(path, header, "sizes")
    if (
        not isinstance(sizes, list)
        or not sizes
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes)
    ):
        raise ModelFileError(f"{path}: field 'sizes' must be a JSON list of positive integers")
    return sizes


def _int_vector(path: Path, name: str, t: np.ndarray | None) -> np.ndarray:
    if t is None:
        raise ModelFileError(f"{path}: tensor {name!r} is missing")
    if t.dtype.kind not in "iu" or t.ndim != 1:
        raise ModelFileError(f"{path}: tensor {name!r} must be a 1-D integer array")
    return t.astype(np.int64)


def _sparse_weight(
    path: Path, i: int, parts: list[np.ndarray | None], shape: tuple[int, int]
) -> sp.csr_array:
    """A CSR weight from its arrays, every invariant checked (sorted, unique, in range)."""
    name = f"layers.{i}.weight"
    data = parts[0]
    if data is None or data.dtype.kind != "f" or data.ndim != 1:
        raise ModelFileError(f"{path}: tensor '{name}.data' must be a 1-D float array")
    if not np.all(np.isfinite(data)):
        raise ModelFileError(f"{path}: tensor '{name}.data' holds NaN or infinite values")
    indices = _int_vector(path, f"{name}.indices", parts[1])
    indptr = _int_vector(path, f"{name}.indptr", parts[2])
    rows, cols = shape
    if indptr.size != rows + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ModelFileError(
            f"{path}: tensor '{name}.indptr' must be {rows + 1} nondecreasing offsets from 0"
        )
    if indptr[-1] != indices.size or indices.size != data.size:
        raise ModelFileError(
            f"{path}: '{name}' has {data.size} values, {indices.size} column indices and "
            f"indptr ending at {indptr[-1]}"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        raise ModelFileError(f"{path}: tensor '{name}.indices' has a column outside [0, {cols})")
    row_of = np.repeat(np.arange(rows), np.diff(indptr))
    same_row = row_of[1:] == row_of[:-1]
    if np.any(same_row & (np.diff(indices) <= 0)):
        raise ModelFileError(
            f"{path}: tensor '{name}.indices' is not strictly increasing within a row"
        )
    return sp.csr_array((data.astype(np.float64), indices, indptr), shape=shape)


def _groups(path: Path, tensors: dict[str, np.ndarray], i: int, units: int) -> MaxGroups | None:
    index, start = tensors.get(f"layers.{i}.groups.index"), tensors.get(f"layers.{i}.groups.start")
    if index is None and start is None:
        return None
    index = _int_vector(path, f"layers.{i}.groups.index", index)
    start = _int_vector(path, f"layers.{i}.groups.start", start)
    if index.size and (index.min() < 0 or index.max() >= units):
        raise ModelFileError(
            f"{path}: tensor 'layers.{i}.groups.index' refers to a unit outside [0, {units})"
        )
    try:
        return MaxGroups(index, start)
    except Nn2mipError as err:
        raise ModelFileError(f"{path}: layer {i}: {err}") from None


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
