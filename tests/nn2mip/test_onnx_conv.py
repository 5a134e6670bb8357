"""ONNX import of convolutional nets: Conv, BatchNorm, pooling, Pad, normalisation, lowered to
sparse maps and max groups, checked against onnxruntime (fp32) and torch (float64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from nn2mip.errors import UnsupportedLayerError
from nn2mip.onnx_io import load_onnx

ort = pytest.importorskip("onnxruntime")

CONV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vnncomp2021_conv"
CONV_NETS = [
    CONV / "verivital" / "Convnet_avgpool.onnx",
    CONV / "verivital" / "Convnet_maxpool.onnx",
    *(CONV / "oval21" / "nets" / f"cifar_{k}_kw.onnx" for k in ("base", "wide", "deep")),
]


def _ort(path: Path | bytes, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(
        str(path) if isinstance(path, Path) else path, providers=["CPUExecutionProvider"]
    )
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    rows = [sess.run(None, {inp.name: xi.reshape(shape).astype(np.float32)})[0] for xi in x]
    return np.concatenate([r.reshape(1, -1) for r in rows])


@pytest.mark.parametrize("path", CONV_NETS, ids=lambda p: p.stem)
def test_vnncomp2021_conv_nets_match_onnxruntime(path):
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    net = load_onnx(path)
    rng = np.random.default_rng(3)
    x = rng.random((4, net.input_size)).astype(np.float32).astype(np.float64)  # the [0,1] box
    ours, ref = net.forward(x), _ort(path, x)
    assert ours.shape == ref.shape
    scale = np.maximum(1.0, np.abs(ref).max())
    assert np.abs(ours - ref).max() <= 2e-5 * scale
    # convolutions are sparse maps, never dense (inputs x units) arrays
    assert net.layers[0].is_sparse
    if "maxpool" in path.stem:
        assert [layer.activation for layer in net.layers] == ["relu", "max", "identity"]


def _model(nodes, inits, in_shape, out_shape) -> bytes:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[
            numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_every_conv_operator_against_torch_float64_and_onnxruntime(tmp_path):
    """Normalisation (Sub/Div), grouped dilated strided Conv, BatchNorm, Relu, padded MaxPool
    with ceil_mode, Pad, AveragePool, Flatten, Gemm."""
    rng = np.random.default_rng(7)
    f32 = lambda *s: rng.normal(size=s).astype(np.float32).astype(np.float64)  # noqa: E731
    p = {
        "mean": f32(1, 2, 1, 1),
        "std": np.abs(f32(1, 2, 1, 1)) + 0.5,
        "w1": f32(4, 1, 3, 3),
        "b1": f32(4),
        "g": f32(4),
        "beta": f32(4),
        "mu": f32(4),
        "var": np.abs(f32(4)) + 0.1,
        "w2": f32(6, 4, 2, 2),
        "fc": f32(5, 6 * 2 * 3),
        "fcb": f32(5),
        "pads": np.array([0, 0, 1, 0, 0, 0, 0, 1]),
    }
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["n1"]),
        helper.make_node("Div", ["n1", "std"], ["n2"]),
        helper.make_node(
            "Conv",
            ["n2", "w1", "b1"],
            ["c1"],
            group=2,
            strides=[2, 1],
            dilations=[1, 2],
            pads=[1, 2, 0, 1],
        ),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mu", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node(
            "MaxPool",
            ["r1"],
            ["mp"],
            kernel_shape=[2, 3],
            strides=[2, 2],
            pads=[1, 1, 0, 1],
            ceil_mode=1,
        ),
        helper.make_node("Pad", ["mp", "pads"], ["pd"], mode="constant"),
        helper.make_node("Conv", ["pd", "w2"], ["c2"]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("AveragePool", ["r2"], ["ap"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("Flatten", ["ap"], ["fl"]),
        helper.make_node("Gemm", ["fl", "fc", "fcb"], ["y"], transB=1),
    ]
    # the file holds float32: the float64 reference uses exactly those values
    p = {k: v if k == "pads" else v.astype(np.float32).astype(np.float64) for k, v in p.items()}
    inits = {k: v for k, v in p.items() if k != "pads"}
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 9, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
        + [numpy_helper.from_array(p["pads"], "pads")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "conv.onnx"
    onnx.save(model, str(path))
    net = load_onnx(path)
    assert [layer.activation for layer in net.layers] == ["relu", "max", "relu", "identity"]
    x = rng.random((6, 2 * 9 * 8)).astype(np.float32).astype(np.float64)

    t = {k: torch.from_numpy(v) for k, v in p.items() if k != "pads"}
    h = (torch.from_numpy(x).reshape(-1, 2, 9, 8) - t["mean"]) / t["std"]
    h = F.conv2d(F.pad(h, (2, 1, 1, 0)), t["w1"], t["b1"], stride=(2, 1), dilation=(1, 2), groups=2)
    h = F.batch_norm(h, t["mu"], t["var"], t["g"], t["beta"], eps=float(np.float32(1e-5))).relu()
    h = F.max_pool2d(F.pad(h, (1, 1, 1, 0), value=-np.inf), (2, 3), (2, 2), ceil_mode=True)
    h = F.pad(h, (0, 1, 1, 0))
    h = F.avg_pool2d(F.conv2d(h, t["w2"]).relu(), 2, 1)
    ref = (h.flatten(1) @ t["fc"].T + t["fcb"]).numpy()
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(net.forward(x), _ort(path, x), rtol=1e-4, atol=1e-4)


def test_unencodable_operator_is_one_line_error_naming_the_node():
    w = np.ones((2, 1, 2, 2))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv0"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="squash"),
        helper.make_node("Flatten", ["s"], ["y"]),
    ]
    data = _model(nodes, {"w": w}, [1, 1, 3, 3], [1, 8])
    path = Path(pytest.importorskip("tempfile").mkdtemp()) / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(UnsupportedLayerError, match=r"'Sigmoid'.*'squash'") as info:
        load_onnx(path)
    assert "\n" not in str(info.value)
    nodes[1] = helper.make_node("Pad", ["c"], ["s"], name="reflect", mode="reflect", pads=[0] * 8)
    path.write_bytes(_model(nodes, {"w": w}, [1, 1, 3, 3], [1, 8]))
    with pytest.raises(UnsupportedLayerError, match=r"'reflect'.*reflect"):
        load_onnx(path)


def test_conv_net_export_round_trip_with_max_groups(tmp_path):
    """save_onnx writes sparse maps as Gemm and max groups as Gather + ReduceMax; reading it
    back gives the same function, and onnxruntime agrees."""
    from test_serialize_conv import _conv_net

    from nn2mip.onnx_io import save_onnx

    net = _conv_net(np.random.default_rng(4))
    x = np.random.default_rng(5).normal(size=(5, net.input_size))
    path = save_onnx(net, tmp_path / "c64.onnx", dtype=np.float64)
    back = load_onnx(path)
    assert [ly.activation for ly in back.layers] == ["relu", "max", "identity"]
    np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=1e-12, atol=1e-12)
    path32 = save_onnx(net, tmp_path / "c32.onnx")
    np.testing.assert_allclose(_ort(path32, x), net.forward(x), rtol=1e-4, atol=1e-4)
