"""Reading and writing feed-forward networks in ONNX.

``load_onnx`` walks the graph from its single input and keeps, for every tensor that depends on
the input, an exact float64 affine map ``T(x) = L x + c`` of the current layer input ``x``: ``L``
is a ``scipy.sparse`` CSR matrix with one row per entry of the tensor (row-major, batch of 1
included) and ``c`` has the tensor's shape. Every affine ONNX operator maps ``L`` by a sparse
matrix or a row selection (Conv, AveragePool and Pad through ``nn2mip.lowering``; BatchNorm and
constant Add/Sub/Mul/Div as row scalings; Flatten/Reshape change nothing but the shape), so a
convolutional net never passes through a dense ``(inputs x units)`` array. A ``Relu`` closes the
current ``AffineLayer``; a ``MaxPool`` closes it with a max over index groups (``MaxGroups``).

``save_onnx`` writes a ``Network`` as a chain of Gemm/Relu nodes with input ``[1, n]`` (a max
layer as Gather + ReduceMax, which ``load_onnx`` reads back as max groups).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from nn2mip import lowering
from nn2mip.errors import InvalidNetworkError, ModelFileError, UnsupportedLayerError
from nn2mip.network import AffineLayer, MaxGroups, Network

SUPPORTED_OPS = (
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Flatten",
    "Reshape",
    "Transpose",
    "Identity",
    "Constant",
    "Conv",
    "BatchNormalization",
    "AveragePool",
    "MaxPool",
    "Pad",
    "Gather",
    "ReduceMax",
)
# Operators on the input-dependent path that need the network's structure (not constant folding).
_STRUCTURAL = (
    "Conv",
    "BatchNormalization",
    "AveragePool",
    "MaxPool",
    "Pad",
    "Transpose",
    "Gather",
    "ReduceMax",
)
# A closed layer's map is stored dense when at least this fraction of it is nonzero.
DENSE_FRACTION = 0.25


@dataclass
class _Sym:
    """An input-dependent tensor ``lin @ x + const`` (flat, row-major), ``x`` the current layer
    input: ``lin`` is CSR of shape (tensor size, layer inputs), ``const`` has the tensor shape."""

    lin: sp.csr_array
    const: np.ndarray
    base: int  # index of the layer whose input ``x`` is

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.const.shape)

    @property
    def size(self) -> int:
        return int(self.const.size)

    @property
    def n_in(self) -> int:
        return self.lin.shape[1]

    def reshaped(self, shape: tuple[int, ...]) -> _Sym:
        return _Sym(self.lin, self.const.reshape(shape), self.base)

    def rows(self, idx: np.ndarray, shape: tuple[int, ...]) -> _Sym:
        """The tensor of ``shape`` whose flat entry ``k`` is this tensor's entry ``idx[k]``."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size == self.size and np.array_equal(idx, np.arange(self.size)):
            return self.reshaped(shape)
        return _Sym(_csr(self.lin[idx, :]), self.const.reshape(-1)[idx].reshape(shape), self.base)

    def mapped(self, matrix: sp.csr_array, bias: np.ndarray, shape: tuple[int, ...]) -> _Sym:
        """``matrix @ self + bias`` as a tensor of ``shape``."""
        m = _csr(matrix)
        return _Sym(
            _csr(m @ self.lin), (m @ self.const.reshape(-1) + bias).reshape(shape), self.base
        )


def _csr(m) -> sp.csr_array:
    out = sp.csr_array(m, dtype=np.float64)
    out.eliminate_zeros()
    return out


def _identity(n: int, shape: tuple[int, ...], base: int) -> _Sym:
    return _Sym(sp.csr_array(sp.identity(n, format="csr")), np.zeros(shape), base)


def _broadcast(s: _Sym, shape: tuple[int, ...]) -> _Sym:
    """``s`` broadcast (numpy rules) to ``shape``: entries repeat as rows of ``lin``."""
    padded = (1,) * (len(shape) - len(s.shape)) + s.shape
    idx = np.broadcast_to(np.arange(s.size).reshape(padded), shape)
    return s.rows(idx.ravel(), tuple(shape))


def _scale_rows(s: _Sym, k: np.ndarray, divide: bool = False) -> _Sym:
    """``s * k`` (or ``s / k``) for a constant ``k`` of ``s``'s shape (exact division kept as
    a division, as onnxruntime computes it)."""
    k = np.asarray(k, dtype=np.float64).reshape(-1)
    lin = s.lin.copy()
    per_entry = np.repeat(k, np.diff(lin.indptr))
    lin.data = lin.data / per_entry if divide else lin.data * per_entry
    const = s.const.reshape(-1) / k if divide else s.const.reshape(-1) * k
    return _Sym(_csr(lin), const.reshape(s.shape), s.base)


def _kron_left(k: np.ndarray, n: int) -> sp.csr_array:
    """``kron(k, I_n)`` as CSR."""
    return sp.csr_array(sp.kron(sp.csr_array(k), sp.identity(n), format="csr"))


def _kron_right(n: int, k: np.ndarray) -> sp.csr_array:
    """``kron(I_n, k)`` as CSR."""
    return sp.csr_array(sp.kron(sp.identity(n), sp.csr_array(k), format="csr"))


def _squeeze_leading(k: np.ndarray, ndim: int) -> np.ndarray:
    """``k`` reduced to ``ndim`` dimensions when its extra leading dimensions are all 1."""
    if k.ndim > ndim:
        if any(d != 1 for d in k.shape[: k.ndim - ndim]):
            raise _Nonlinear("a batched constant operand is not supported; use a 2-D weight")
        k = k.reshape(k.shape[k.ndim - ndim :])
    return k


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return np.matmul(np.zeros(a), np.zeros(b)).shape


def _matmul_sym_const(a: _Sym, k: np.ndarray) -> _Sym:
    """``a @ k`` (numpy matmul semantics) for a constant ``k`` (rank 1 or 2, or leading 1s)."""
    k = _float(k)
    if k.ndim < 1:
        raise ValueError("MatMul operand must be at least 1-D")
    out_shape = _matmul_shape(a.shape, k.shape)
    k = _squeeze_leading(k, 2)
    rows = a.size // k.shape[0]  # (..., M, K) @ (K, N): kron(I, k.T) on the flat rows
    kt = k[None, :] if k.ndim == 1 else k.T
    return a.mapped(_kron_right(rows, kt), 0.0, out_shape)


def _matmul_const_sym(k: np.ndarray, b: _Sym) -> _Sym:
    """``k @ b`` for a constant ``k`` (rank 1 or 2, or leading 1s) and an input-dependent ``b``."""
    k = _float(k)
    if k.ndim < 1:
        raise ValueError("MatMul operand must be at least 1-D")
    out_shape = _matmul_shape(k.shape, b.shape)
    k = _squeeze_leading(k, 2)
    if len(b.shape) == 1:  # (M, K) @ (K,) -> (M,)
        return b.mapped(sp.csr_array(np.atleast_2d(k)), 0.0, out_shape)
    kk = k[None, :] if k.ndim == 1 else k
    batch = b.size // (b.shape[-2] * b.shape[-1])  # (..., K, N): kron(I, kron(k, I_N))
    matrix = sp.kron(sp.identity(batch), _kron_left(kk, b.shape[-1]), format="csr")
    return b.mapped(sp.csr_array(matrix), 0.0, out_shape)


def _transpose(s: _Sym, perm) -> _Sym:
    perm = list(range(len(s.shape)))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(len(s.shape))):
        raise ValueError(f"Transpose perm {perm} does not fit a tensor of rank {len(s.shape)}")
    idx = np.arange(s.size).reshape(s.shape).transpose(perm)
    return s.rows(idx.ravel(), idx.shape)


def _node_label(node, index: int) -> str:
    name = node.name or f"#{index}"
    return f"node '{name}' ({node.op_type})"


def _float(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _as_constant(onnx_mod, node, label: str) -> np.ndarray:
    """Value of a ``Constant`` node."""
    from onnx import numpy_helper

    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_int"):
            return np.asarray(onnx_mod.helper.get_attribute_value(attr))
        if attr.name in ("value_floats", "value_ints"):
            return np.asarray(list(onnx_mod.helper.get_attribute_value(attr)))
    raise UnsupportedLayerError(f"{label}: only tensor or numeric Constant values are supported")


def _reshape_target(shape: tuple[int, ...], target: np.ndarray, allowzero: int) -> tuple:
    """ONNX Reshape semantics: 0 copies the input dimension (unless allowzero), -1 is inferred."""
    dims = [int(v) for v in np.asarray(target).reshape(-1)]
    out = []
    for i, d in enumerate(dims):
        if d == 0 and not allowzero:
            if i >= len(shape):
                raise ValueError("a 0 in the target shape has no matching input dimension")
            out.append(shape[i])
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise ValueError("more than one -1 in the target shape")
    total = int(np.prod(shape))
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        if known == 0 or total % known:
            raise ValueError(f"cannot reshape {shape} to {dims}")
        out[out.index(-1)] = total // known
    if int(np.prod(out)) != total:
        raise ValueError(f"cannot reshape {shape} to {dims}")
    return tuple(out)


def _attrs(onnx_mod, node) -> dict:
    return {a.name: onnx_mod.helper.get_attribute_value(a) for a in node.attribute}


def _gemm_operands(a, b, attrs: dict):
    """Apply transA/transB to Gemm operands (numpy arrays or ``_Sym``)."""

    def transpose(v):
        if (v.const.ndim if isinstance(v, _Sym) else v.ndim) != 2:
            raise ValueError("Gemm operands must be 2-D")
        return _transpose(v, None) if isinstance(v, _Sym) else v.T

    if attrs.get("transA", 0):
        a = transpose(a)
    if attrs.get("transB", 0):
        b = transpose(b)
    for v in (a, b):
        if (v.const.ndim if isinstance(v, _Sym) else v.ndim) != 2:
            raise ValueError("Gemm operands must be 2-D")
    return a, b


def _apply_affine(op: str, inputs: list, attrs: dict):
    """Apply an affine op where exactly the ``_Sym`` inputs depend on the network input."""
    syms = [v for v in inputs if isinstance(v, _Sym)]
    if op in ("Identity", "Flatten", "Reshape"):
        s = inputs[0]
        if op == "Identity":
            return s
        if op == "Flatten":
            axis = int(attrs.get("axis", 1))
            shape = s.shape
            if axis < 0:
                axis += len(shape)
            target = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
        else:
            target = _reshape_target(s.shape, inputs[1], int(attrs.get("allowzero", 0)))
        return s.reshaped(target)

    if op == "Transpose":
        return _transpose(inputs[0], attrs.get("perm"))

    if op in ("Add", "Sub"):
        a, b = inputs
        shape = np.broadcast_shapes(
            *(v.shape if isinstance(v, _Sym) else np.shape(v) for v in inputs)
        )
        sign = 1.0 if op == "Add" else -1.0
        lin, const = None, np.zeros(shape)
        for v, s in ((a, 1.0), (b, sign)):
            if isinstance(v, _Sym):
                v = _broadcast(v, shape)
                lin = s * v.lin if lin is None else lin + s * v.lin
                const = const + s * v.const
            else:
                const = const + s * _float(v)
        return _Sym(_csr(lin), const, syms[0].base)

    if op in ("Mul", "Div"):
        a, b = inputs
        if len(syms) != 1:
            raise _Nonlinear(f"{op} of two input-dependent tensors is not affine")
        if op == "Div" and isinstance(b, _Sym):
            raise _Nonlinear("division by an input-dependent tensor is not affine")
        s, k = (a, _float(b)) if isinstance(a, _Sym) else (b, _float(a))
        if op == "Div" and np.any(k == 0):
            raise InvalidNetworkError("division by a constant that contains zeros")
        shape = np.broadcast_shapes(s.shape, k.shape)
        return _scale_rows(_broadcast(s, shape), np.broadcast_to(k, shape), divide=op == "Div")

    if op == "MatMul":
        a, b = inputs
        if len(syms) != 1:
            raise _Nonlinear("MatMul of two input-dependent tensors is not affine")
        return _matmul_sym_const(a, b) if isinstance(a, _Sym) else _matmul_const_sym(a, b)

    if op == "Gemm":
        a, b = inputs[0], inputs[1]
        c = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
        if isinstance(c, _Sym):
            raise _Nonlinear("Gemm with an input-dependent C is not supported")
        if len(syms) != 1:
            raise _Nonlinear("Gemm of two input-dependent tensors is not affine")
        alpha = float(attrs.get("alpha", 1.0))
        beta = float(attrs.get("beta", 1.0))
        a, b = _gemm_operands(a, b, attrs)
        out = _matmul_sym_const(a, b) if isinstance(a, _Sym) else _matmul_const_sym(a, b)
        if alpha != 1.0:
            out = _Sym(_csr(alpha * out.lin), alpha * out.const, out.base)
        if c is not None:
            const = out.const + beta * _float(c)
            if const.shape != out.shape:
                raise ValueError("Gemm C does not broadcast to (M, N)")
            out = _Sym(out.lin, const, out.base)
        return out

    return _apply_structural(op, inputs, attrs)


def _chw(s: _Sym, label: str) -> tuple[int, int, int]:
    if len(s.shape) != 4 or s.shape[0] != 1:
        raise ValueError(f"{label} needs a (1, C, H, W) input, got shape {s.shape}")
    return s.shape[1:]  # type: ignore[return-value]


def _apply_structural(op: str, inputs: list, attrs: dict) -> _Sym:
    """Conv, BatchNormalization, AveragePool, Pad (MaxPool closes a layer in ``load_onnx``)."""
    s = inputs[0]
    if any(isinstance(v, _Sym) for v in inputs[1:]):
        raise _Nonlinear(f"{op} with an input-dependent weight or parameter is not supported")
    if op == "Conv":
        c, h, w = _chw(s, "Conv")
        weight = _float(inputs[1])
        bias = _float(inputs[2]) if len(inputs) > 2 and inputs[2] is not None else None
        if weight.ndim != 4:
            raise _Nonlinear(f"only 2-D convolutions are supported (weight {weight.shape})")
        kw = lowering.onnx_window_kwargs("Conv", attrs, (h, w), kernel_hw=weight.shape[2:])
        m = lowering.conv2d_map(weight, bias, (c, h, w), **kw)
        return s.mapped(m.matrix, m.bias, (1, *m.out_shape))
    if op == "AveragePool":
        c, h, w = _chw(s, "AveragePool")
        kw = lowering.onnx_window_kwargs("AveragePool", attrs, (h, w))
        m = lowering.avg_pool2d_map((c, h, w), **kw)
        return s.mapped(m.matrix, m.bias, (1, *m.out_shape))
    if op == "BatchNormalization":
        if attrs.get("training_mode", 0):
            raise _Nonlinear("BatchNormalization in training mode is not supported")
        if len(s.shape) < 2 or s.shape[0] != 1:
            raise ValueError(f"BatchNormalization needs a (1, C, ...) input, got {s.shape}")
        scale, shift = lowering.batchnorm_affine(
            *inputs[1:5], float(attrs.get("epsilon", 1e-5)), s.shape[1:]
        )
        out = _scale_rows(s, scale)
        return _Sym(out.lin, out.const + shift.reshape(s.shape), s.base)
    if op == "Gather":
        idx = np.asarray(inputs[1])
        if idx.dtype.kind not in "iu":
            raise ValueError("Gather indices must be integers")
        axis = int(attrs.get("axis", 0))
        where = np.arange(s.size).reshape(s.shape)
        axis = axis + where.ndim if axis < 0 else axis
        idx = np.where(idx < 0, idx + s.shape[axis], idx)  # ONNX: negative counts from the end
        taken = np.take(where, idx, axis=axis)  # raises IndexError when out of range
        return s.rows(taken.ravel(), taken.shape)
    if op == "Pad":
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "constant":
            raise _Nonlinear(f"Pad mode '{mode}' is not supported (only constant)")
        pads = attrs.get("pads") if len(inputs) < 2 or inputs[1] is None else inputs[1]
        value = float(attrs.get("value", 0.0))
        if len(inputs) > 2 and inputs[2] is not None and np.size(inputs[2]):
            value = float(np.asarray(inputs[2]).reshape(-1)[0])
        if len(inputs) > 3 and inputs[3] is not None:
            raise _Nonlinear("Pad with an axes input is not supported")
        pads = [int(p) for p in np.asarray(pads if pads is not None else []).reshape(-1)]
        nd = len(s.shape)
        if len(pads) != 2 * nd or min(pads, default=0) < 0:
            raise ValueError(f"Pad needs {2 * nd} non-negative pads, got {pads}")
        out_shape = tuple(d + pads[i] + pads[i + nd] for i, d in enumerate(s.shape))
        where = np.arange(int(np.prod(out_shape))).reshape(out_shape)
        rows = where[tuple(slice(pads[i], pads[i] + d) for i, d in enumerate(s.shape))].ravel()
        sel = sp.csr_array(
            (np.ones(rows.size), (rows, np.arange(rows.size))), shape=(where.size, s.size)
        )
        bias = np.full(where.size, value)
        bias[rows] = 0.0
        return s.mapped(sel, bias, out_shape)
    raise AssertionError(op)  # pragma: no cover


def _reduce_max(s: _Sym, inputs: list, attrs: dict) -> tuple[MaxGroups, tuple[int, ...]]:
    """ReduceMax of ``s`` over its ``axes`` as index groups, and the output shape."""
    axes = attrs.get("axes") if len(inputs) < 2 or inputs[1] is None else inputs[1]
    nd = len(s.shape)
    if axes is None or np.size(axes) == 0:
        if attrs.get("noop_with_empty_axes", 0):
            raise _Nonlinear("ReduceMax with noop_with_empty_axes is not supported")
        axes = list(range(nd))
    axes = sorted({int(a) + nd if int(a) < 0 else int(a) for a in np.asarray(axes).reshape(-1)})
    if any(a < 0 or a >= nd for a in axes):
        raise ValueError(f"ReduceMax axes {axes} do not fit a tensor of rank {nd}")
    keep = [a for a in range(nd) if a not in axes]
    where = np.arange(s.size).reshape(s.shape).transpose(keep + axes)
    size = int(np.prod([s.shape[a] for a in axes]))
    groups = MaxGroups(where.ravel(), np.arange(0, where.size + 1, size))
    kept = tuple(1 if a in axes else d for a, d in enumerate(s.shape))
    return groups, kept if attrs.get("keepdims", 1) else tuple(s.shape[a] for a in keep)


def _max_pool(s: _Sym, attrs: dict) -> tuple[MaxGroups, tuple[int, ...]]:
    """MaxPool of ``s`` as index groups over its flat entries, and the output shape."""
    if attrs.get("storage_order", 0):
        raise _Nonlinear("MaxPool with storage_order=1 is not supported")
    c, h, w = _chw(s, "MaxPool")
    kw = lowering.onnx_window_kwargs("MaxPool", attrs, (h, w))
    g = lowering.max_pool2d_groups((c, h, w), **kw)
    return MaxGroups(g.index, g.start), (1, *g.out_shape)


def _eval_constant(op: str, inputs: list, attrs: dict) -> np.ndarray:
    """Fold an operator whose inputs are all constants (numpy semantics match ONNX here)."""
    if op == "Identity":
        return inputs[0]
    if op == "Relu":
        return np.maximum(inputs[0], 0)
    if op == "Gather":
        return np.take(inputs[0], inputs[1], axis=int(attrs.get("axis", 0)))
    if op == "Transpose":
        perm = attrs.get("perm")
        return np.transpose(inputs[0], None if perm is None else [int(p) for p in perm])
    if op == "Flatten":
        x = inputs[0]
        axis = int(attrs.get("axis", 1))
        axis = axis + x.ndim if axis < 0 else axis
        return x.reshape(int(np.prod(x.shape[:axis])), -1)
    if op == "Reshape":
        return inputs[0].reshape(
            _reshape_target(inputs[0].shape, inputs[1], int(attrs.get("allowzero", 0)))
        )
    a, b = inputs[0], inputs[1]
    if op == "Add":
        return a + b
    if op == "Sub":
        return a - b
    if op == "Mul":
        return a * b
    if op == "Div":
        return a / b
    if op == "MatMul":
        return a @ b
    if op == "Gemm":
        if attrs.get("transA", 0):
            a = a.T
        if attrs.get("transB", 0):
            b = b.T
        out = float(attrs.get("alpha", 1.0)) * (a @ b)
        if len(inputs) > 2 and inputs[2] is not None:
            out = out + float(attrs.get("beta", 1.0)) * inputs[2]
        return out
    raise AssertionError(op)  # pragma: no cover


class _Nonlinear(Exception):
    pass


def _input_shape(value_info) -> tuple[int, ...]:
    """Concrete input shape with a symbolic/unknown batch (first) dimension set to 1."""
    dims = value_info.type.tensor_type.shape.dim
    shape = []
    for i, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            if i == 0 and len(dims) > 1 and d.dim_value != 1:
                raise UnsupportedLayerError(
                    f"input '{value_info.name}' has batch size {d.dim_value}; "
                    "nn2mip needs batch size 1 or a symbolic batch dimension"
                )
            shape.append(int(d.dim_value))
        elif i == 0:
            shape.append(1)
        else:
            raise UnsupportedLayerError(
                f"input '{value_info.name}' dimension {i} is not fixed; nn2mip needs a fixed size"
            )
    if not shape:
        raise UnsupportedLayerError(f"input '{value_info.name}' has no known shape")
    return tuple(shape)


def _read_model(path: Path):
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a core dependency
        raise ModelFileError("the 'onnx' package is needed to read ONNX files") from None
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf raises several unrelated types on corrupt files
        msg = (str(err).splitlines() or [type(err).__name__])[0]
        raise ModelFileError(f"cannot read {path} as an ONNX model: {msg}") from None
    if not model.graph.node or not model.graph.input:
        raise ModelFileError(f"{path} holds no ONNX graph (empty or not an ONNX file)")
    return onnx, model


def load_onnx(path: str | Path) -> Network:
    """Load a feed-forward ReLU network from an ONNX file as an exact float64 ``Network``.

    Consecutive affine operators are folded into one ``AffineLayer``; each ``Relu`` closes a
    layer. Raises ``ModelFileError`` for missing or corrupt files and ``UnsupportedLayerError``
    naming the operator and node for anything that is not an affine/ReLU chain.
    """
    path = Path(path)
    onnx, model = _read_model(path)
    from onnx import numpy_helper

    graph = model.graph
    values: dict[str, np.ndarray | _Sym | None] = {"": None}
    for init in graph.initializer:
        try:
            values[init.name] = numpy_helper.to_array(init)
        except Exception as err:
            raise ModelFileError(f"{path}: cannot read initializer '{init.name}': {err}") from None
    real_inputs = [vi for vi in graph.input if vi.name not in values]
    if len(real_inputs) != 1:
        names = ", ".join(vi.name for vi in real_inputs) or "none"
        raise UnsupportedLayerError(f"nn2mip needs exactly one graph input, found: {names}")
    if len(graph.output) != 1:
        raise UnsupportedLayerError(
            f"nn2mip needs exactly one graph output, found {len(graph.output)}"
        )
    in_info = real_inputs[0]
    in_shape = _input_shape(in_info)
    n_in = int(np.prod(in_shape))
    layers: list[AffineLayer] = []
    values[in_info.name] = _identity(n_in, in_shape, 0)
    fresh: set[int] = set()  # ids of _Sym values that are the identity right after a Relu

    def close(sym: _Sym, relu: bool, groups: MaxGroups | None = None) -> None:
        weight = sym.lin
        if weight.nnz >= DENSE_FRACTION * weight.shape[0] * weight.shape[1]:
            weight = weight.toarray()  # a dense map (fully connected) stays a dense array
        layers.append(AffineLayer(weight, sym.const.reshape(-1), relu=relu, groups=groups))

    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            raise UnsupportedLayerError(
                f"unsupported ONNX operator '{op}' at {label.split(' (')[0]}; nn2mip reads "
                + ", ".join(SUPPORTED_OPS)
            )
        if len(node.output) != 1:
            raise UnsupportedLayerError(
                f"{label}: operators with several outputs are not supported"
            )
        if op == "Constant":
            values[node.output[0]] = _as_constant(onnx, node, label)
            continue
        try:
            inputs = [values[name] for name in node.input]
        except KeyError as err:
            raise ModelFileError(
                f"{path}: {label} reads tensor {err} that no earlier node produces"
            ) from None
        attrs = _attrs(onnx, node)
        syms = [v for v in inputs if isinstance(v, _Sym)]
        if not node.output or not node.input or inputs[0] is None:
            raise ModelFileError(f"{path}: {label} has no input or no output tensor")
        try:
            if not syms:
                if op in _STRUCTURAL and op not in ("Transpose", "Gather"):
                    raise UnsupportedLayerError(f"{label}: {op} of constants is not supported")
                values[node.output[0]] = _eval_constant(op, inputs, attrs)
                continue
            if any(s.base != len(layers) for s in syms):
                raise UnsupportedLayerError(
                    f"{label}: branches or skip connections around a Relu are not supported"
                )
            if op == "Reshape" and isinstance(inputs[1], _Sym):
                raise UnsupportedLayerError(f"{label}: the target shape depends on the input")
            if op == "Relu":
                s = inputs[0]
                if id(s) in fresh:  # relu(relu(z)) == relu(z)
                    out = s
                else:
                    close(s, relu=True)
                    out = _identity(s.const.size, s.shape, len(layers))
                    fresh.add(id(out))
                values[node.output[0]] = out
                continue
            if op in ("MaxPool", "ReduceMax"):
                s = inputs[0]
                if op == "MaxPool":
                    groups, shape = _max_pool(s, attrs)
                else:
                    groups, shape = _reduce_max(s, inputs, attrs)
                close(s, relu=False, groups=groups)
                values[node.output[0]] = _identity(groups.num_groups, shape, len(layers))
                continue
            values[node.output[0]] = _apply_affine(op, inputs, attrs)
        except _Nonlinear as err:
            raise UnsupportedLayerError(f"{label}: {err}") from None
        except (ValueError, IndexError, TypeError) as err:
            # TypeError: an optional input left empty where the operator needs one
            raise UnsupportedLayerError(f"{label}: {err}") from None

    out_name = graph.output[0].name
    if out_name not in values:
        raise ModelFileError(f"{path}: the graph output '{out_name}' is never produced")
    out = values[out_name]
    if not isinstance(out, _Sym):
        raise UnsupportedLayerError("the graph output does not depend on the input")
    if out.base != len(layers):
        raise UnsupportedLayerError("the graph output skips a Relu (branching graph)")
    if id(out) not in fresh:
        w = out.lin
        is_identity = (
            layers
            and layers[-1].activation != "identity"
            and w.shape[0] == w.shape[1]
            and not np.any(out.const)
            and w.nnz == w.shape[0]
            and np.array_equal(w.indices, np.arange(w.shape[0]))
            and np.all(w.data == 1.0)
        )
        if not is_identity:
            close(out, relu=False)
    meta = {p.key: p.value for p in model.metadata_props}
    meta.setdefault("source_format", "onnx")
    meta["onnx_input_shape"] = "x".join(str(d) for d in in_shape)
    return Network(tuple(layers), meta=meta)


def save_onnx(
    network: Network,
    path: str | Path,
    dtype: type | np.dtype = np.float32,
    input_name: str = "input",
    output_name: str = "output",
    opset: int = 13,
) -> Path:
    """Write ``network`` as Gemm (transB=1) / Relu nodes with input ``[1, n]`` in ``dtype``.

    ``dtype`` is ``np.float32`` (what most verifiers expect) or ``np.float64`` (lossless).
    ``network.meta`` is stored in the model's metadata properties.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dt = np.dtype(dtype)
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
    if dt not in elem:
        raise InvalidNetworkError(f"save_onnx supports float32 or float64, not {dt}")
    nodes, inits = [], []
    current = input_name
    n = len(network.layers)
    for i, layer in enumerate(network.layers):
        w_name, b_name = f"layers.{i}.weight", f"layers.{i}.bias"
        inits.append(numpy_helper.from_array(layer.dense_weight().astype(dt), w_name))
        inits.append(numpy_helper.from_array(layer.bias.astype(dt), b_name))
        last = i == n - 1
        gemm_out = output_name if last and layer.activation == "identity" else f"gemm_{i}"
        nodes.append(
            helper.make_node(
                "Gemm", [current, w_name, b_name], [gemm_out], name=f"gemm_{i}", transB=1
            )
        )
        current = gemm_out
        if layer.groups is not None:
            # max over groups: Gather a (groups, largest group) table, ReduceMax its last axis;
            # a shorter group repeats its first index (a repeat leaves a max unchanged).
            table = layer.groups.padded()
            table = np.where(table < 0, table[:, :1], table)
            inits.append(numpy_helper.from_array(table, f"layers.{i}.groups"))
            nodes.append(
                helper.make_node(
                    "Gather",
                    [current, f"layers.{i}.groups"],
                    [f"gather_{i}"],
                    axis=1,
                    name=f"gather_{i}",
                )
            )
            max_out = output_name if last else f"max_{i}"
            nodes.append(
                helper.make_node(
                    "ReduceMax",
                    [f"gather_{i}"],
                    [max_out],
                    axes=[2],
                    keepdims=0,
                    name=f"max_{i}",
                )
            )
            current = max_out
        if layer.relu:
            relu_out = output_name if last else f"relu_{i}"
            nodes.append(helper.make_node("Relu", [current], [relu_out], name=f"relu_{i}"))
            current = relu_out
    graph = helper.make_graph(
        nodes,
        "nn2mip_network",
        [helper.make_tensor_value_info(input_name, elem[dt], [1, network.input_size])],
        [helper.make_tensor_value_info(output_name, elem[dt], [1, network.output_size])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, producer_name="nn2mip", opset_imports=[helper.make_opsetid("", opset)]
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.10 and older verifiers
    for key, value in network.meta.items():
        if key == "onnx_input_shape":
            continue
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
