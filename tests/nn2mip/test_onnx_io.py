"""ONNX import/export: exact folding of affine chains, round trips, onnxruntime agreement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nn2mip.errors import ModelFileError, UnsupportedLayerError
from nn2mip.network import Network, network_from_arrays
from nn2mip.onnx_io import load_onnx, save_onnx
from nn2mip.serialize import load_network

ort = pytest.importorskip("onnxruntime")

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VNN_NETS = [DATA / "vnncomp_mnist_fc" / "onnx" / f"mnist-net_256x{k}.onnx" for k in (2, 4, 6)]
GUROBI_NET = DATA / "gurobi_ml" / "mnist_model.onnx"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"shared data not found at {path} (expected ../shared/data beside the checkout)"
        )
    return path


def _random_net(rng: np.random.Generator, sizes: list[int], zero_frac: float = 0.4) -> Network:
    ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = rng.normal(size=(n_out, n_in))
        w[rng.random(w.shape) < zero_frac] = 0.0
        b = rng.normal(size=n_out)
        b[rng.random(n_out) < zero_frac] = 0.0
        ws.append(w)
        bs.append(b)
    return network_from_arrays(ws, bs)


def _run_ort(path: Path, x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Run an ONNX file on each row of ``x`` (reshaped to the declared input shape)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    rows = [sess.run(None, {inp.name: xi.reshape(shape).astype(dtype)})[0] for xi in x]
    return np.concatenate([r.reshape(1, -1) for r in rows])


def _save_model(tmp_path: Path, nodes, inits, in_shape, out_shape, dtype=TensorProto.DOUBLE):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", dtype, in_shape)],
        [helper.make_tensor_value_info("y", dtype, out_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def _to_float64(src: Path, dst: Path) -> Path:
    """Copy of an fp32 model with every initializer and the I/O in float64 (for exact checks)."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float64), init.name))
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    onnx.save(model, str(dst))
    return dst


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("sizes", [[5, 7, 3], [12, 8, 8, 8, 4], [3, 2]])
def test_round_trip_float64_is_exact(tmp_path, sizes):
    net = _random_net(np.random.default_rng(len(sizes)), sizes)
    back = load_onnx(save_onnx(net, tmp_path / "n.onnx", dtype=np.float64))
    assert len(back.layers) == len(net.layers)
    for a, b in zip(net.layers, back.layers, strict=True):
        assert a.relu == b.relu
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
    assert back.num_weights == net.num_weights


def test_round_trip_float32_keeps_zeros_and_agrees_with_onnxruntime(tmp_path):
    rng = np.random.default_rng(0)
    net = _random_net(rng, [20, 16, 16, 5], zero_frac=0.6)
    path = save_onnx(net, tmp_path / "n.onnx")
    back = load_onnx(path)
    for a, b in zip(net.layers, back.layers, strict=True):
        np.testing.assert_allclose(b.weight, a.weight, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(a.weight == 0, b.weight == 0)  # exact zeros stay zero
        np.testing.assert_allclose(b.bias, a.bias, rtol=0, atol=1e-6)
    x = rng.uniform(-1, 1, size=(20, 20))
    np.testing.assert_allclose(back.forward(x), net.forward(x), atol=1e-5)
    np.testing.assert_allclose(_run_ort(path, x), back.forward(x.astype(np.float32)), atol=1e-4)
    model = onnx.load(str(path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 20]


def test_save_relu_last_layer_and_meta(tmp_path):
    net = network_from_arrays([np.eye(3)], [np.zeros(3)], relu_last=True)
    net = Network(net.layers, meta={"dataset": "toy"})
    back = load_onnx(save_onnx(net, tmp_path / "n.onnx", dtype=np.float64))
    assert [layer.relu for layer in back.layers] == [True]
    assert back.meta["dataset"] == "toy"
    np.testing.assert_array_equal(back.forward(np.array([-1.0, 2.0, 0.5])), [0.0, 2.0, 0.5])


def test_load_network_dispatches_onnx(tmp_path):
    net = _random_net(np.random.default_rng(3), [4, 3, 2])
    path = save_onnx(net, tmp_path / "n.onnx", dtype=np.float64)
    back = load_network(path)
    assert back.describe() == net.describe()
    x = np.random.default_rng(4).normal(size=(5, 4))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


# --------------------------------------------------------------------------- operator folding


def test_normalisation_and_reshape_are_folded_exactly(tmp_path):
    """Sub/Div/Mul by constants, Flatten of [1,1,2,3], Reshape, Gemm(alpha, beta), MatMul+Add."""
    rng = np.random.default_rng(1)
    w1, b1 = rng.normal(size=(4, 6)), rng.normal(size=4)
    w2, b2 = rng.normal(size=(4, 3)), rng.normal(size=3)
    inits = {
        "mean": np.array(0.1307),
        "std": np.array(0.3081),
        "scale": rng.uniform(0.5, 2, size=(1, 1, 2, 3)),
        "w1": w1,
        "b1": b1,
        "w2": w2,
        "b2": b2,
        "shape": np.array([-1, 6], dtype=np.int64),
    }
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"], name="sub"),
        helper.make_node("Div", ["s", "std"], ["d"], name="div"),
        helper.make_node("Mul", ["scale", "d"], ["m"], name="mul"),
        helper.make_node("Flatten", ["m"], ["f"], name="flat", axis=1),
        helper.make_node("Reshape", ["f", "shape"], ["r"], name="reshape"),
        helper.make_node("Identity", ["r"], ["i"], name="id"),
        helper.make_node("Gemm", ["i", "w1", "b1"], ["g"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["mm"]),
        helper.make_node("Add", ["b2", "mm"], ["y"]),
    ]
    path = _save_model(tmp_path, nodes, inits, [1, 1, 2, 3], [1, 3])
    net = load_onnx(path)
    assert net.describe() == "6-4-3"
    x = rng.uniform(0, 1, size=(10, 6))
    ref = _run_ort(path, x, dtype=np.float64)
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-12, atol=1e-12)


def test_gemm_transposes_and_constant_left_operand(tmp_path):
    """Column-vector style: Reshape to [4, 1], Gemm(transA) and Gemm(W, x) forms."""
    rng = np.random.default_rng(2)
    inits = {
        "col": np.array([4, 1], dtype=np.int64),
        "wa": rng.normal(size=(4, 5)),
        "ca": rng.normal(size=5),
        "wb": rng.normal(size=(3, 5)),
        "cb": rng.normal(size=(3, 1)),
        "row": np.array([1, 3], dtype=np.int64),
    }
    nodes = [
        helper.make_node("Reshape", ["x", "col"], ["xc"]),
        helper.make_node("Gemm", ["xc", "wa", "ca"], ["g1"], transA=1),  # [1, 5]
        helper.make_node("Relu", ["g1"], ["h1"]),
        helper.make_node("Gemm", ["wb", "h1", "cb"], ["g2"], transB=1),  # [3, 1]
        helper.make_node("Reshape", ["g2", "row"], ["y"]),
    ]
    path = _save_model(tmp_path, nodes, inits, [1, 4], [1, 3])
    net = load_onnx(path)
    assert net.describe() == "4-5-3"
    x = rng.normal(size=(8, 4))
    np.testing.assert_allclose(net.forward(x), _run_ort(path, x, np.float64), atol=1e-12)


def test_relu_on_input_double_relu_and_trailing_flatten(tmp_path):
    inits = {"w": np.array([[1.0, -2.0], [0.0, 3.0]]), "c": np.array([2.0])}
    nodes = [
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array([0.5]))),
        helper.make_node("Relu", ["x"], ["r0"]),
        helper.make_node("Mul", ["r0", "k"], ["m"]),
        helper.make_node("MatMul", ["m", "w"], ["z"]),
        helper.make_node("Relu", ["z"], ["r1"]),
        helper.make_node("Relu", ["r1"], ["r2"]),
        helper.make_node("Flatten", ["r2"], ["y"]),
    ]
    path = _save_model(tmp_path, nodes, inits, ["batch", 2], [1, 2])
    net = load_onnx(path)
    assert [layer.relu for layer in net.layers] == [True, True]
    x = np.array([[1.0, -1.0], [-3.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(net.forward(x), _run_ort(path, x, np.float64), atol=1e-12)


# --------------------------------------------------------------------------- bad inputs


def test_unsupported_operator_names_op_and_node(tmp_path):
    nodes = [helper.make_node("Sigmoid", ["x"], ["y"], name="act1")]
    path = _save_model(tmp_path, nodes, {}, [1, 3], [1, 3])
    with pytest.raises(UnsupportedLayerError, match=r"'Sigmoid'.*'act1'") as info:
        load_onnx(path)
    assert "\n" not in str(info.value)


def test_nonlinear_and_branching_graphs_are_rejected(tmp_path):
    nodes = [helper.make_node("Mul", ["x", "x"], ["y"], name="square")]
    with pytest.raises(UnsupportedLayerError, match="square"):
        load_onnx(_save_model(tmp_path, nodes, {}, [1, 3], [1, 3]))
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Add", ["r", "x"], ["y"], name="skip"),
    ]
    with pytest.raises(UnsupportedLayerError, match="skip"):
        load_onnx(_save_model(tmp_path, nodes, {}, [1, 3], [1, 3]))


def test_batch_size_above_one_is_rejected(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(UnsupportedLayerError, match="batch size 4"):
        load_onnx(_save_model(tmp_path, nodes, {}, [4, 3], [4, 3]))


def test_missing_corrupt_and_empty_files(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_onnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ModelFileError):
        load_onnx(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError):
        load_onnx(empty)


# --------------------------------------------------------------------------- real networks


@pytest.fixture(scope="module")
def mnist_images():
    from nn2mip.mnist import load_mnist

    _need(DATA / "mnist" / "t10k-images-idx3-ubyte.gz")
    return load_mnist(DATA / "mnist", "test", limit=100)[0]


@pytest.mark.parametrize("path", [*VNN_NETS, GUROBI_NET], ids=lambda p: p.stem)
def test_real_networks_match_onnxruntime(tmp_path, path, mnist_images):
    net = load_onnx(_need(path))
    assert net.input_size == 784 and net.output_size == 10
    x = mnist_images
    x32 = x.astype(np.float32).astype(np.float64)
    ours = net.forward(x32)
    ref = _run_ort(path, x32)
    # fp32 rounding in onnxruntime; gurobi_ml's logits reach ~4000, so scale by magnitude.
    scale = np.maximum(1.0, np.abs(ref).max(axis=1, keepdims=True))
    assert np.all(np.abs(ours - ref) <= 1e-5 * scale)
    # Against the same graph evaluated in float64 the folding is exact up to summation order.
    ref64 = _run_ort(_to_float64(path, tmp_path / "f64.onnx"), x32, dtype=np.float64)
    np.testing.assert_allclose(ours, ref64, rtol=1e-12, atol=1e-10)


def test_vnncomp_network_shapes():
    net = load_onnx(_need(VNN_NETS[2]))
    assert net.hidden_sizes == [256] * 6
    assert [layer.relu for layer in net.layers] == [True] * 6 + [False]
    assert net.meta["onnx_input_shape"] == "1x784x1"


def test_constant_subgraphs_are_folded(tmp_path):
    """Weights computed from constants (Mul/Add/Flatten of initializers) and a Constant shape."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=(1, 3, 2))
    inits = {"w": w, "two": np.array(2.0), "b": rng.normal(size=2)}
    nodes = [
        helper.make_node("Flatten", ["w"], ["wf"], axis=2),  # constant (3, 2)
        helper.make_node("Mul", ["wf", "two"], ["w2"]),
        helper.make_node("Relu", ["b"], ["bp"]),
        helper.make_node(
            "Constant", [], ["shape"], value=numpy_helper.from_array(np.array([1, 3]))
        ),
        helper.make_node("Reshape", ["x", "shape"], ["xr"]),
        helper.make_node("MatMul", ["xr", "w2"], ["z"]),
        helper.make_node("Add", ["z", "bp"], ["y"]),
    ]
    path = _save_model(tmp_path, nodes, inits, [1, 3, 1], [1, 2])
    net = load_onnx(path)
    assert net.describe() == "3-2"
    np.testing.assert_array_equal(net.layers[0].weight, 2.0 * w.reshape(3, 2).T)
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(net.forward(x), _run_ort(path, x, np.float64), atol=1e-12)
