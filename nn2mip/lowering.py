"""Lowering of convolutional operators to sparse linear maps and max-over-index-groups.

Every tensor of shape ``(C, H, W)`` is the flat vector of its ``C * H * W`` entries in row-major
(CHW) order, as torch and ONNX lay it out, so Flatten and Reshape are the identity on it. Then

- Conv2d, average pooling and constant padding are affine maps ``y = A x + b`` with ``A`` a
  ``scipy.sparse.csr_array`` built by index arithmetic (never through a dense matrix; zero
  weights never become entries);
- max pooling is ``y[g] = max(x[i] for i in group g)``; padded positions (``-inf`` in torch
  and ONNX) simply are not in the group;
- BatchNorm (eval) and constant Add/Sub/Mul/Div are elementwise affine maps ``x -> s * x + t``
  that fold exactly into the neighbouring linear map (``fold_after`` / ``fold_before``).

Padding follows ONNX: ``(top, left, bottom, right)`` = ``(x1_begin, x2_begin, x1_end,
x2_end)``; an int or an ``(h, w)`` pair means symmetric padding as in torch. Pooling windows
with ``ceil_mode`` follow torch and onnxruntime (a window must start inside the input or its
begin padding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from nn2mip.errors import InvalidNetworkError, UnsupportedLayerError

Shape = tuple[int, ...]
Pair = int | Sequence[int]
Pads = int | Sequence[int]
Matrix = np.ndarray | sp.csr_array


@dataclass(frozen=True, eq=False)
class LinearMap:
    """``y = matrix @ x + bias`` from a flat input of ``in_shape`` to a flat output of
    ``out_shape`` (CHW order)."""

    matrix: sp.csr_array
    bias: np.ndarray
    in_shape: Shape
    out_shape: Shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The map on a batch ``x`` of shape (n, in) (or one flat vector)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            return self.matrix @ x + self.bias
        return np.asarray(self.matrix @ x.T).T + self.bias


@dataclass(frozen=True, eq=False)
class MaxPoolGroups:
    """Max pooling as index groups over the flat input, stored like CSR (as
    ``nn2mip.network.MaxGroups`` takes them): output ``g`` is the max of
    ``x[index[start[g]:start[g + 1]]]``, in CHW order of ``out_shape``."""

    index: np.ndarray
    start: np.ndarray
    in_shape: Shape
    out_shape: Shape

    def groups(self) -> list[np.ndarray]:
        """The groups as a list of index arrays."""
        return np.split(self.index, self.start[1:-1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The max pooling of a batch ``x`` of shape (n, in) (or one flat vector)."""
        x = np.asarray(x, dtype=np.float64)
        return np.maximum.reduceat(x[..., self.index], self.start[:-1], axis=-1)


# ---------------------------------------------------------------- shapes and attributes


def pair(value: Pair, name: str) -> tuple[int, int]:
    """``(h, w)`` from an int or a pair of ints (torch and ONNX 2-D attributes)."""
    vals = (value, value) if np.isscalar(value) else tuple(value)
    if len(vals) != 2 or not all(float(v).is_integer() for v in vals):
        raise InvalidNetworkError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(vals[0]), int(vals[1])


def spatial_pads(padding: Pads) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` from an int, an ``(h, w)`` pair (symmetric, torch) or a
    4-tuple in ONNX order ``(x1_begin, x2_begin, x1_end, x2_end)``."""
    if np.isscalar(padding):
        p = int(padding)
        pads = (p, p, p, p)
    else:
        vals = tuple(int(v) for v in padding)
        if len(vals) == 2:
            pads = (vals[0], vals[1], vals[0], vals[1])
        elif len(vals) == 4:
            pads = vals
        else:
            raise InvalidNetworkError(f"padding must have 1, 2 or 4 entries, got {padding!r}")
    if min(pads) < 0:
        raise InvalidNetworkError(f"padding must be >= 0, got {padding!r}")
    return pads  # type: ignore[return-value]


def onnx_auto_pads(
    auto_pad: str, in_hw: Sequence[int], kernel: Pair, stride: Pair = 1, dilation: Pair = 1
) -> tuple[int, int, int, int] | None:
    """Explicit pads ``(top, left, bottom, right)`` for an ONNX ``auto_pad`` attribute, or
    ``None`` for ``NOTSET`` (use the node's ``pads``). ``SAME_UPPER`` puts the odd pad at the
    end, ``SAME_LOWER`` at the beginning; ``VALID`` pads nothing."""
    mode = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if mode in ("", "NOTSET"):
        return None
    if mode == "VALID":
        return (0, 0, 0, 0)
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedLayerError(f"unknown ONNX auto_pad {mode!r}")
    begin, end = [], []
    windows = zip(
        in_hw,
        pair(kernel, "kernel"),
        pair(stride, "stride"),
        pair(dilation, "dilation"),
        strict=True,
    )
    for size, k, s, d in windows:
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else large)
        end.append(large if mode == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])


def onnx_window_kwargs(
    op_type: str, attrs: Mapping[str, Any], in_hw: Sequence[int], kernel_hw: Pair | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``conv2d_map`` (``op_type="Conv"``; ``kernel_hw`` from the weight,
    ``groups`` included), ``avg_pool2d_map`` (``"AveragePool"``) or ``max_pool2d_groups``
    (``"MaxPool"``) from an ONNX node's attribute dict (values as
    ``onnx.helper.get_attribute_value`` gives them), with ONNX's defaults: stride and dilation
    1, no padding, ``count_include_pad=0``, ``ceil_mode=0``; ``auto_pad`` resolved."""
    if op_type not in ("Conv", "AveragePool", "MaxPool"):
        raise UnsupportedLayerError(f"{op_type} is not a 2-D window operator")
    kernel = attrs.get("kernel_shape", kernel_hw)
    if kernel is None:
        raise InvalidNetworkError(f"{op_type} node has no kernel_shape")
    kernel = pair(kernel, "kernel_shape")
    if kernel_hw is not None and kernel != pair(kernel_hw, "kernel"):
        raise InvalidNetworkError(f"{op_type} kernel_shape {kernel} != weight kernel {kernel_hw}")
    stride = pair(attrs.get("strides", 1), "strides")
    dilation = pair(attrs.get("dilations", 1), "dilations")
    pads = onnx_auto_pads(attrs.get("auto_pad", "NOTSET"), in_hw, kernel, stride, dilation)
    if pads is None:
        pads = spatial_pads(attrs.get("pads", 0))
    out: dict[str, Any] = {"stride": stride, "padding": pads}
    if op_type == "Conv":
        out.update(dilation=dilation, groups=int(attrs.get("group", 1)))
        return out
    out.update(kernel=kernel, ceil_mode=bool(attrs.get("ceil_mode", 0)))
    if op_type == "AveragePool":
        if dilation != (1, 1):
            raise UnsupportedLayerError("AveragePool with dilations is not supported")
        out["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
    else:
        out["dilation"] = dilation
    return out


def output_size(
    size: int,
    kernel: int,
    stride: int,
    pad_begin: int,
    pad_end: int,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a convolution or pooling window along one axis (torch's rule: with
    ``ceil_mode`` the last window must start inside the input or the begin padding)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad_begin + pad_end - span
    if room < 0:
        raise InvalidNetworkError(
            f"window of extent {span} does not fit an input of {size} padded by "
            f"({pad_begin}, {pad_end})"
        )
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def _check_shape(in_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in in_shape)
    if len(shape) != 3 or min(shape) <= 0:
        raise InvalidNetworkError(f"input shape must be (C, H, W) with positive sizes, got {shape}")
    return shape  # type: ignore[return-value]


def _check_window(kernel: Pair, stride: Pair, dilation: Pair) -> tuple[tuple[int, int], ...]:
    k, s, d = pair(kernel, "kernel"), pair(stride, "stride"), pair(dilation, "dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1:
        raise InvalidNetworkError(f"kernel, stride and dilation must be >= 1, got {k}, {s} and {d}")
    return k, s, d


def _window_taps(
    size: int, out: int, kernel: int, stride: int, pad_begin: int, dilation: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input position ``pos[k, o] = o * stride - pad_begin + k * dilation`` of tap ``k`` of
    window ``o`` along one axis, and whether it lies inside the input (not in the padding)."""
    pos = np.arange(out)[None, :] * stride - pad_begin + np.arange(kernel)[:, None] * dilation
    return pos, (pos >= 0) & (pos < size)


def _window_grid(
    pos_h: np.ndarray, ok_h: np.ndarray, pos_w: np.ndarray, ok_w: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """For every output position ``o = oh * OW + ow`` and kernel tap ``k = kh * KW + kw``:
    whether the tap is inside the input, and its flat spatial index ``ih * width + iw``
    (both (OH * OW, KH * KW))."""
    oh, ow, kh, kw = pos_h.shape[1], pos_w.shape[1], pos_h.shape[0], pos_w.shape[0]
    ok = ok_h.T[:, None, :, None] & ok_w.T[None, :, None, :]
    spatial = pos_h.T[:, None, :, None] * width + pos_w.T[None, :, None, :]
    return ok.reshape(oh * ow, kh * kw), spatial.reshape(oh * ow, kh * kw)


# ---------------------------------------------------------------- convolution


def conv2d_map(
    weight: np.ndarray,
    bias: np.ndarray | None,
    in_shape: Sequence[int],
    stride: Pair = 1,
    padding: Pads = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> LinearMap:
    """Conv2d (cross-correlation, zero padding, as torch and ONNX ``Conv``) as a sparse map.

    ``weight`` is (C_out, C_in / groups, kH, kW), ``bias`` (C_out,) or ``None``, ``in_shape``
    (C_in, H, W). Row ``(co, oh, ow)`` of the matrix holds ``weight[co, ci, kh, kw]`` in column
    ``(g * C_in / groups + ci, oh * sH - top + kh * dH, ow * sW - left + kw * dW)`` when that
    position is inside the input; taps on the padding and zero weights are not stored.
    Built directly in CSR form (rows in order, columns sorted) by vectorized passes over
    blocks of filters; time and memory are proportional to the taps, never to a dense matrix.
    """
    w = np.asarray(weight, dtype=np.float64)
    c_in, h, wd = _check_shape(in_shape)
    if w.ndim != 4 or min(w.shape) < 1:
        raise InvalidNetworkError(
            f"conv weight must be 4-D (C_out, C_in/groups, kH, kW), got {w.shape}"
        )
    c_out, c_in_g, kh, kw = w.shape
    if groups < 1 or c_in % groups or c_out % groups or c_in_g * groups != c_in:
        raise InvalidNetworkError(
            f"conv weight {w.shape} with groups={groups} does not fit {c_in} input channels"
        )
    b = np.zeros(c_out) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if b.shape[0] != c_out:
        raise InvalidNetworkError(f"conv bias has {b.shape[0]} entries for {c_out} filters")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise InvalidNetworkError("conv weight or bias contains NaN or inf")
    _, (sh, sw), (dh, dw) = _check_window((kh, kw), stride, dilation)
    top, left, bottom, right = spatial_pads(padding)
    oh = output_size(h, kh, sh, top, bottom, dh)
    ow = output_size(wd, kw, sw, left, right, dw)
    pos_h, ok_h = _window_taps(h, oh, kh, sh, top, dh)
    pos_w, ok_w = _window_taps(wd, ow, kw, sw, left, dw)
    ok_sp, in_sp = _window_grid(pos_h, ok_h, pos_w, ok_w, wd)  # (oh*ow, kh*kw)
    # Entries in row order (co, oh, ow) and, within a row, in (ci, kh, kw) order, which is
    # increasing column order: the CSR arrays are built directly, without sorting.
    w_flat = w.reshape(c_out, c_in_g, kh * kw)
    most = max(c_in * h * wd, c_out * oh * ow * c_in_g * kh * kw)
    idx_type = np.int32 if most < 2**31 - 1 else np.int64
    # Column of (filter f, input channel ci, tap k of window o), split into three addends.
    first_in = ((np.arange(c_out) // (c_out // groups)) * c_in_g * (h * wd)).astype(idx_type)
    chan_off = (np.arange(c_in_g)[:, None] * (h * wd)).astype(idx_type)  # (c_in_g, 1)
    in_sp = in_sp.astype(idx_type)
    data, indices, counts = [], [], []
    chunk = max(1, int(2e7 // max(1, oh * ow * c_in_g * kh * kw)))  # bounded scratch memory
    for lo in range(0, c_out, chunk):
        hi = min(c_out, lo + chunk)
        # keep[f, o, ci, k]: tap k of window o on input channel ci carries a nonzero weight.
        keep = (w_flat[lo:hi, None] != 0) & ok_sp[None, :, None, :]
        cols = first_in[lo:hi, None, None, None] + chan_off[None, None] + in_sp[None, :, None, :]
        vals = np.broadcast_to(w_flat[lo:hi, None], keep.shape)
        data.append(vals[keep])
        indices.append(cols[keep])
        counts.append(keep.reshape(hi - lo, oh * ow, -1).sum(axis=2).ravel())
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(idx_type)
    matrix = sp.csr_array(
        (np.concatenate(data), np.concatenate(indices), indptr),
        shape=(c_out * oh * ow, c_in * h * wd),
    )
    matrix.has_sorted_indices = True  # true by construction (tested); saves a sort downstream
    return LinearMap(matrix, np.repeat(b, oh * ow), (c_in, h, wd), (c_out, oh, ow))


def _csr(
    rows: list[np.ndarray], cols: list[np.ndarray], vals: list[np.ndarray], shape: tuple[int, int]
) -> sp.csr_array:
    if rows:
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    else:
        r = c = np.zeros(0, np.int64)
        v = np.zeros(0)
    m = sp.csr_array((v, (r, c)), shape=shape)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m


# ---------------------------------------------------------------- pooling and padding


def _pool_windows(
    in_shape: Sequence[int],
    kernel: Pair,
    stride: Pair | None,
    padding: Pads,
    dilation: Pair,
    ceil_mode: bool,
):
    c, h, w = _check_shape(in_shape)
    (kh, kw), (sh, sw), (dh, dw) = _check_window(
        kernel, kernel if stride is None else stride, dilation
    )
    top, left, bottom, right = spatial_pads(padding)
    oh = output_size(h, kh, sh, top, bottom, dh, ceil_mode)
    ow = output_size(w, kw, sw, left, right, dw, ceil_mode)
    return (c, h, w), (kh, kw), (sh, sw), (dh, dw), (top, left, bottom, right), (oh, ow)


def avg_pool2d_map(
    in_shape: Sequence[int],
    kernel: Pair,
    stride: Pair | None = None,
    padding: Pads = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> LinearMap:
    """Average pooling (torch ``avg_pool2d``, ONNX ``AveragePool``) as a sparse map.

    ``stride`` defaults to the kernel. The divisor is the number of taps inside the input
    (``count_include_pad=False``, ONNX's default) or, with ``True`` (torch's default), the
    window clipped to the padded input (the full kernel unless ``ceil_mode`` runs it past the
    padding), exactly as torch computes it.
    """
    (c, h, w), (kh, kw), (sh, sw), _, (top, left, bottom, right), (oh, ow) = _pool_windows(
        in_shape, kernel, stride, padding, 1, ceil_mode
    )
    pos_h, ok_h = _window_taps(h, oh, kh, sh, top, 1)
    pos_w, ok_w = _window_taps(w, ow, kw, sw, left, 1)
    if count_include_pad:
        # torch: hend = min(hstart + k, H + pad_end), divisor = (hend - hstart) * (...)
        span_h = np.minimum(np.arange(oh) * sh - top + kh, h + bottom) - (np.arange(oh) * sh - top)
        span_w = np.minimum(np.arange(ow) * sw - left + kw, w + right) - (np.arange(ow) * sw - left)
    else:
        span_h, span_w = ok_h.sum(axis=0), ok_w.sum(axis=0)
    divisor = span_h[:, None] * span_w[None, :]  # (oh, ow)
    rows, cols, vals = [], [], []
    for i in range(kh):
        for j in range(kw):
            ys, xs = np.nonzero(ok_h[i][:, None] & ok_w[j][None, :])
            out_idx = ys * ow + xs
            in_idx = pos_h[i, ys] * w + pos_w[j, xs]
            ch = np.arange(c)[:, None]
            rows.append((ch * (oh * ow) + out_idx[None, :]).ravel())
            cols.append((ch * (h * w) + in_idx[None, :]).ravel())
            vals.append(np.tile(1.0 / divisor[ys, xs], c))
    matrix = _csr(rows, cols, vals, (c * oh * ow, c * h * w))
    return LinearMap(matrix, np.zeros(c * oh * ow), (c, h, w), (c, oh, ow))


def max_pool2d_groups(
    in_shape: Sequence[int],
    kernel: Pair,
    stride: Pair | None = None,
    padding: Pads = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
) -> MaxPoolGroups:
    """Max pooling (torch ``max_pool2d``, ONNX ``MaxPool``) as index groups over the flat input.

    Padding is ``-inf`` in both, so a padded tap never wins: it is left out of its group.
    Raises ``InvalidNetworkError`` if some window holds padding only.
    """
    (c, h, w), (kh, kw), (sh, sw), (dh, dw), (top, left, _, _), (oh, ow) = _pool_windows(
        in_shape, kernel, stride, padding, dilation, ceil_mode
    )
    pos_h, ok_h = _window_taps(h, oh, kh, sh, top, dh)
    pos_w, ok_w = _window_taps(w, ow, kw, sw, left, dw)
    ok, spatial = _window_grid(pos_h, ok_h, pos_w, ok_w, w)
    sizes = ok.sum(axis=1)
    if np.any(sizes == 0):
        raise InvalidNetworkError(
            f"max pooling with kernel {(kh, kw)}, padding {padding!r} has a window of padding only"
        )
    taps = spatial[ok]  # row-major: window by window, taps in kernel order
    index = (np.arange(c)[:, None] * (h * w) + taps[None, :]).ravel()
    per_channel = np.concatenate([[0], np.cumsum(sizes)])
    start = np.concatenate(
        [(k * taps.size + per_channel[:-1]) for k in range(c)] + [[c * taps.size]]
    ).astype(np.int64)
    return MaxPoolGroups(index.astype(np.int64), start, (c, h, w), (c, oh, ow))


def pad_map(in_shape: Sequence[int], pads: Pads, value: float = 0.0) -> LinearMap:
    """Constant spatial padding (ONNX ``Pad`` mode ``constant`` on H and W) as a sparse
    selection map; padded entries are the constant ``value`` (in the bias)."""
    c, h, w = _check_shape(in_shape)
    top, left, bottom, right = spatial_pads(pads)
    oh, ow = h + top + bottom, w + left + right
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out_sp = ((ys + top) * ow + xs + left).ravel()
    ch = np.arange(c)[:, None]
    rows = (ch * (oh * ow) + out_sp[None, :]).ravel()
    cols = np.arange(c * h * w)
    matrix = _csr([rows], [cols], [np.ones(rows.size)], (c * oh * ow, c * h * w))
    bias = np.full(c * oh * ow, float(value))
    bias[rows] = 0.0
    return LinearMap(matrix, bias, (c, h, w), (c, oh, ow))


def identity_map(shape: Sequence[int]) -> LinearMap:
    """The identity on a tensor of ``shape`` (Flatten and Reshape are this in CHW order)."""
    n = int(np.prod(shape))
    return LinearMap(
        sp.csr_array(sp.identity(n, format="csr")), np.zeros(n), tuple(shape), tuple(shape)
    )


# ---------------------------------------------------------------- elementwise affine maps


def broadcast_constant(values: np.ndarray | float, shape: Sequence[int]) -> np.ndarray:
    """A constant broadcast against a tensor of ``shape`` ((C, H, W) or (n,)) by numpy/ONNX
    rules, flattened: a scalar, a per-channel ``(C, 1, 1)`` or ``(1, C, 1, 1)``, or a full
    tensor. A leading batch axis of 1 is dropped. (A plain ``(C,)`` vector broadcasts along
    W, as in ONNX; per-channel BatchNorm parameters go through ``batchnorm_affine``.)"""
    shape = tuple(int(v) for v in shape)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim > len(shape) and v.shape[0] == 1:
        v = v.reshape(v.shape[1:])
    try:
        return np.broadcast_to(v, shape).reshape(-1).copy()
    except ValueError:
        raise InvalidNetworkError(
            f"constant of shape {np.shape(values)} does not broadcast to {shape}"
        ) from None


def batchnorm_affine(
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    shape: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm in eval mode, ``gamma * (x - mean) / sqrt(var + eps) + beta`` per channel, as
    ``x -> s * x + t`` on the flat tensor of ``shape`` ((C, H, W) or (C,)): ``s = gamma /
    sqrt(var + eps)``, ``t = beta - s * mean``, repeated over the spatial positions."""
    c = int(shape[0])
    g, bt, mu, v = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (gamma, beta, mean, var))
    if not all(a.shape == (c,) for a in (g, bt, mu, v)):
        raise InvalidNetworkError(f"BatchNorm parameters must have {c} entries (one per channel)")
    if np.any(v + eps <= 0):
        raise InvalidNetworkError("BatchNorm running variance + eps must be positive")
    s = g / np.sqrt(v + eps)
    t = bt - s * mu
    spatial = int(np.prod(shape[1:]))
    return np.repeat(s, spatial), np.repeat(t, spatial)


def elementwise_affine(
    op: str, constant: np.ndarray | float, shape: Sequence[int], constant_first: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """ONNX ``Add``/``Sub``/``Mul``/``Div`` of a tensor of ``shape`` with a constant as
    ``x -> s * x + t`` (flat vectors ``s``, ``t``). ``constant_first``: the constant is the
    first operand (``c - x``; ``c / x`` is not affine and is refused). Division by ``c``
    becomes multiplication by ``1 / c`` (equal up to one rounding)."""
    c = broadcast_constant(constant, shape)
    ones, zeros = np.ones_like(c), np.zeros_like(c)
    if op == "Add":
        return ones, c
    if op == "Sub":
        return (-ones, c) if constant_first else (ones, -c)
    if op == "Mul":
        return c, zeros
    if op == "Div":
        if constant_first:
            raise UnsupportedLayerError("Div of a constant by the input is not affine")
        if np.any(c == 0):
            raise InvalidNetworkError("Div by a constant with zero entries")
        return 1.0 / c, zeros
    raise UnsupportedLayerError(f"{op} is not an elementwise affine operator")


def affine_map(scale: np.ndarray, shift: np.ndarray, shape: Sequence[int]) -> LinearMap:
    """``x -> s * x + t`` on a tensor of ``shape`` as a sparse diagonal map, for an elementwise
    affine with no linear map to fold into (zero scales leave no entries)."""
    n = int(np.prod(shape))
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    t = np.asarray(shift, dtype=np.float64).reshape(-1)
    if s.shape != (n,) or t.shape != (n,):
        raise InvalidNetworkError(f"affine of size {s.shape[0]}/{t.shape[0]} on a tensor of {n}")
    keep = np.flatnonzero(s)
    m = sp.csr_array((s[keep], (keep, keep)), shape=(n, n))
    return LinearMap(m, t.copy(), tuple(shape), tuple(shape))


def _scale_rows(matrix: Matrix, s: np.ndarray) -> Matrix:
    if sp.issparse(matrix):
        m = sp.csr_array(matrix, dtype=np.float64, copy=True)
        m.data *= np.repeat(s, np.diff(m.indptr))
        m.eliminate_zeros()
        return m
    return np.asarray(matrix, dtype=np.float64) * s[:, None]


def _scale_cols(matrix: Matrix, s: np.ndarray) -> Matrix:
    if sp.issparse(matrix):
        m = sp.csr_array(matrix, dtype=np.float64, copy=True)
        m.data *= s[m.indices]
        m.eliminate_zeros()
        return m
    return np.asarray(matrix, dtype=np.float64) * s[None, :]


def fold_after(
    matrix: Matrix, bias: np.ndarray, scale: np.ndarray, shift: np.ndarray
) -> tuple[Matrix, np.ndarray]:
    """``s * (W x + b) + t`` as one map: ``(diag(s) W, s * b + t)``. Folds BatchNorm or a
    constant Add/Mul after a Conv/Gemm (per output row; for conv ``s`` is per channel,
    repeated). Dense stays dense, sparse stays CSR; zero scales leave no entries."""
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    t = np.asarray(shift, dtype=np.float64).reshape(-1)
    if s.shape != (matrix.shape[0],) or t.shape != (matrix.shape[0],):
        raise InvalidNetworkError(
            f"affine of size {s.shape[0]}/{t.shape[0]} after a map with {matrix.shape[0]} outputs"
        )
    return _scale_rows(matrix, s), s * np.asarray(bias, dtype=np.float64) + t


def fold_before(
    scale: np.ndarray, shift: np.ndarray, matrix: Matrix, bias: np.ndarray
) -> tuple[Matrix, np.ndarray]:
    """``W (s * x + t) + b`` as one map: ``(W diag(s), W t + b)``. Folds an input
    normalisation (``(x - mean) / std``) into the first Conv/Gemm."""
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    t = np.asarray(shift, dtype=np.float64).reshape(-1)
    if s.shape != (matrix.shape[1],) or t.shape != (matrix.shape[1],):
        raise InvalidNetworkError(
            f"affine of size {s.shape[0]}/{t.shape[0]} before a map with {matrix.shape[1]} inputs"
        )
    return _scale_cols(matrix, s), matrix @ t + np.asarray(bias, dtype=np.float64)


def fold_batchnorm(
    matrix: Matrix,
    bias: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    out_shape: Sequence[int],
) -> tuple[Matrix, np.ndarray]:
    """BatchNorm (eval) after a linear map with output ``out_shape`` ((C, H, W) for a conv,
    (C,) for a Gemm), folded into it: ``W' = diag(s) W``, ``b' = s * (b - mean) + beta``."""
    s, t = batchnorm_affine(gamma, beta, mean, var, eps, out_shape)
    return fold_after(matrix, bias, s, t)


def compose(outer: LinearMap, inner: LinearMap) -> LinearMap:
    """``outer(inner(x))`` as one sparse map (e.g. a padding or average pooling merged into the
    next convolution when no activation sits between them)."""
    if int(np.prod(outer.in_shape)) != int(np.prod(inner.out_shape)):
        raise InvalidNetworkError(
            f"cannot compose a map from {outer.in_shape} after one to {inner.out_shape}"
        )
    m = sp.csr_array(outer.matrix @ inner.matrix)
    m.eliminate_zeros()
    m.sort_indices()
    return LinearMap(m, outer.matrix @ inner.bias + outer.bias, inner.in_shape, outer.out_shape)
