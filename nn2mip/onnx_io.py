"""Reading and writing feed-forward ReLU networks in ONNX.

``load_onnx`` walks the graph from its single input and keeps, for every tensor that depends on
the input, an exact float64 affine map ``T(x) = sum_i x_i L[i] + c`` of the current layer input
``x``. ``L`` has one leading axis per input coordinate followed by the tensor's real shape (batch
of 1 included), so every affine ONNX operator is applied to ``L`` with plain numpy broadcasting.
A ``Relu`` closes the current ``AffineLayer``; consecutive affine operators (normalisation,
Flatten, Reshape, Gemm, MatMul, bias Add, ...) are composed into one layer.

``save_onnx`` writes a ``Network`` as a chain of Gemm/Relu nodes with input ``[1, n]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nn2mip.errors import InvalidNetworkError, ModelFileError, UnsupportedLayerError
from nn2mip.network import AffineLayer, Network

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
    "Identity",
    "Constant",
)


@dataclass
class _Sym:
    """An input-dependent tensor: ``sum_i x_i * lin[i] + const``, ``x`` the current layer input."""

    lin: np.ndarray  # (n_in, *shape)
    const: np.ndarray  # shape
    base: int  # index of the layer whose input ``x`` is

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.const.shape)

    @property
    def n_in(self) -> int:
        return self.lin.shape[0]

    def padded(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(lin, const)`` with the tensor shape left-padded with ones to ``ndim`` dims."""
        extra = (1,) * (ndim - self.const.ndim)
        shape = extra + self.shape
        return self.lin.reshape((self.n_in, *shape)), self.const.reshape(shape)


def _identity(n: int, shape: tuple[int, ...], base: int) -> _Sym:
    return _Sym(np.eye(n).reshape((n, *shape)), np.zeros(shape), base)


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
        if isinstance(v, _Sym):
            if len(v.shape) != 2:
                raise ValueError("Gemm operands must be 2-D")
            return _Sym(v.lin.swapaxes(-1, -2), v.const.T, v.base)
        if v.ndim != 2:
            raise ValueError("Gemm operands must be 2-D")
        return v.T

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
        return _Sym(s.lin.reshape((s.n_in, *target)), s.const.reshape(target), s.base)

    if op in ("Add", "Sub"):
        a, b = inputs
        ndim = max(v.const.ndim if isinstance(v, _Sym) else np.ndim(v) for v in (a, b))
        sign = 1.0 if op == "Add" else -1.0
        parts_lin, parts_const = [], []
        for v, s in ((a, 1.0), (b, sign)):
            if isinstance(v, _Sym):
                lin, const = v.padded(ndim)
                parts_lin.append(s * lin)
                parts_const.append(s * const)
            else:
                parts_const.append(s * _float(v))
        const = parts_const[0] + parts_const[1]
        lin = parts_lin[0] if len(parts_lin) == 1 else parts_lin[0] + parts_lin[1]
        lin = np.broadcast_to(lin, (lin.shape[0], *const.shape)).copy()
        return _Sym(lin, const, syms[0].base)

    if op in ("Mul", "Div"):
        a, b = inputs
        if len(syms) != 1:
            raise _Nonlinear(f"{op} of two input-dependent tensors is not affine")
        if op == "Div" and isinstance(b, _Sym):
            raise _Nonlinear("division by an input-dependent tensor is not affine")
        s, k = (a, _float(b)) if isinstance(a, _Sym) else (b, _float(a))
        if op == "Div":
            if np.any(k == 0):
                raise InvalidNetworkError("division by a constant that contains zeros")
        ndim = max(s.const.ndim, k.ndim)
        lin, const = s.padded(ndim)
        kk = k.reshape((1,) * (ndim - k.ndim) + k.shape)
        if op == "Mul":
            const2, lin2 = const * kk, lin * kk[None]
        else:
            const2, lin2 = const / kk, lin / kk[None]
        lin2 = np.broadcast_to(lin2, (lin2.shape[0], *const2.shape)).copy()
        return _Sym(lin2, const2, s.base)

    if op == "MatMul":
        a, b = inputs
        if len(syms) != 1:
            raise _Nonlinear("MatMul of two input-dependent tensors is not affine")
        if isinstance(a, _Sym):
            k = _float(b)
            if k.ndim < 1:
                raise ValueError("MatMul operand must be at least 1-D")
            if k.ndim > a.const.ndim:
                lin, const = a.padded(k.ndim)
            else:
                lin, const = a.lin, a.const
            return _Sym(lin @ k, const @ k, a.base)
        k = _float(a)
        if b.const.ndim < 2 or k.ndim < 1:
            raise ValueError("constant @ input needs an input of rank >= 2")
        lin, const = b.padded(max(k.ndim, b.const.ndim))
        return _Sym(k @ lin, k @ const, b.base)

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
        if isinstance(a, _Sym):
            k = _float(b)
            lin, const = a.lin @ k, a.const @ k
            base = a.base
        else:
            k = _float(a)
            lin, const = k @ b.lin, k @ b.const
            base = b.base
        if alpha != 1.0:
            lin, const = alpha * lin, alpha * const
        if c is not None:
            const = const + beta * _float(c)
            if const.ndim != 2:
                raise ValueError("Gemm C does not broadcast to (M, N)")
            lin = np.broadcast_to(lin, (lin.shape[0], *const.shape)).copy()
        return _Sym(lin, const, base)

    raise AssertionError(op)  # pragma: no cover


def _eval_constant(op: str, inputs: list, attrs: dict) -> np.ndarray:
    """Fold an operator whose inputs are all constants (numpy semantics match ONNX here)."""
    if op == "Identity":
        return inputs[0]
    if op == "Relu":
        return np.maximum(inputs[0], 0)
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

    def close(sym: _Sym, relu: bool) -> None:
        weight = sym.lin.reshape(sym.n_in, -1).T
        bias = sym.const.reshape(-1)
        layers.append(AffineLayer(weight, bias, relu=relu))

    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            raise UnsupportedLayerError(
                f"unsupported ONNX operator '{op}' at {label.split(' (')[0]}; nn2mip reads "
                "Gemm, MatMul, Add, Sub, Mul, Div, Relu, Flatten, Reshape, Identity, Constant"
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
        w = out.lin.reshape(out.n_in, -1).T
        is_identity = (
            layers
            and layers[-1].relu
            and w.shape[0] == w.shape[1]
            and not np.any(out.const)
            and np.array_equal(w, np.eye(w.shape[0]))
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
        inits.append(numpy_helper.from_array(layer.weight.astype(dt), w_name))
        inits.append(numpy_helper.from_array(layer.bias.astype(dt), b_name))
        last = i == n - 1
        gemm_out = output_name if last and not layer.relu else f"gemm_{i}"
        nodes.append(
            helper.make_node(
                "Gemm", [current, w_name, b_name], [gemm_out], name=f"gemm_{i}", transB=1
            )
        )
        current = gemm_out
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
