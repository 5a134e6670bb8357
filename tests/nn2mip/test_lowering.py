"""Lowering of convolutional operators: every map against torch in float64 (random shapes with
hypothesis), against onnxruntime on the VNN-COMP 2021 convolutional nets, and exact structure
(zero weights and padding taps are never matrix entries)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nn2mip.errors import InvalidNetworkError, UnsupportedLayerError
from nn2mip.lowering import (
    LinearMap,
    affine_map,
    avg_pool2d_map,
    batchnorm_affine,
    broadcast_constant,
    compose,
    conv2d_map,
    elementwise_affine,
    fold_after,
    fold_batchnorm,
    fold_before,
    identity_map,
    max_pool2d_groups,
    onnx_auto_pads,
    onnx_window_kwargs,
    output_size,
    pad_map,
    spatial_pads,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vnncomp2021_conv"
FEW = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.array(a, dtype=np.float64))


def _torch_pad(x: torch.Tensor, pads: tuple[int, int, int, int], value: float) -> torch.Tensor:
    top, left, bottom, right = pads
    return F.pad(x, (left, right, top, bottom), value=value)


def _jacobian(fn, in_shape: tuple[int, ...]) -> np.ndarray:
    """The matrix of a linear torch function, column by column from basis inputs (exact when
    each output is one weight times one input)."""
    n = int(np.prod(in_shape))
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    return fn(basis).reshape(n, -1).T.numpy()


def _rows_sorted(m: sp.csr_array) -> bool:
    return all(
        np.all(np.diff(m.indices[a:b]) > 0)
        for a, b in zip(m.indptr[:-1], m.indptr[1:], strict=True)
    )


# ---------------------------------------------------------------- Conv2d


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 9))
    zero_frac = draw(st.sampled_from([0.0, 0.5]))
    seed = draw(st.integers(0, 2**16))
    return groups, c_in, c_out, (kh, kw), (sh, sw), (dh, dw), pads, (h, w), zero_frac, seed


@FEW
@given(conv_cases())
def test_conv2d_map_equals_torch_and_stores_no_zero(case) -> None:
    groups, c_in, c_out, k, s, d, pads, (h, w), zero_frac, seed = case
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(c_out, c_in // groups, *k))
    weight[rng.random(weight.shape) < zero_frac] = 0.0
    bias = rng.normal(size=c_out)
    m = conv2d_map(weight, bias, (c_in, h, w), stride=s, padding=pads, dilation=d, groups=groups)

    def conv(x: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(_torch_pad(x, pads, 0.0), _t(weight), b, s, 0, d, groups)

    x = rng.normal(size=(3, c_in, h, w))
    ref = conv(_t(x), _t(bias)).numpy()
    assert m.out_shape == ref.shape[1:]
    np.testing.assert_allclose(m(x.reshape(3, -1)), ref.reshape(3, -1), rtol=0, atol=1e-12)
    # Exact structure: the matrix is the convolution's Jacobian, entry for entry, and holds
    # exactly its nonzeros (zero weights and padding taps are not entries), rows sorted.
    jac = _jacobian(lambda xb: conv(xb, None), (c_in, h, w))
    assert np.array_equal(m.matrix.toarray(), jac)
    assert m.matrix.nnz == np.count_nonzero(jac)
    assert isinstance(m.matrix, sp.csr_array) and _rows_sorted(m.matrix)
    assert np.array_equal(m.bias, np.repeat(bias, m.out_shape[1] * m.out_shape[2]))


def test_conv2d_torch_style_padding_and_no_bias() -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 3, 3, 5))
    x = rng.normal(size=(2, 3, 8, 11))
    m = conv2d_map(weight, None, (3, 8, 11), stride=2, padding=(1, 2), dilation=(2, 1))
    ref = F.conv2d(_t(x), _t(weight), None, 2, (1, 2), (2, 1)).numpy()
    np.testing.assert_allclose(m(x.reshape(2, -1)), ref.reshape(2, -1), atol=1e-12)
    assert not m.bias.any()
    np.testing.assert_allclose(m(x[0].reshape(-1)), ref[0].reshape(-1), atol=1e-12)


def test_conv2d_all_zero_weight_is_an_empty_matrix() -> None:
    m = conv2d_map(np.zeros((2, 1, 3, 3)), np.ones(2), (1, 5, 5), padding=1)
    assert m.matrix.nnz == 0 and m.matrix.shape == (50, 25)
    assert np.array_equal(m(np.ones(25)), np.ones(50))


def test_conv2d_of_a_cifar_layer_is_sparse_and_exact() -> None:
    """The oval21 CIFAR nets' first layer shape: 3x32x32 -> 16x16x16, built without a dense
    matrix (nnz = filters x output positions x in-bounds taps)."""
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(16, 3, 4, 4))
    m = conv2d_map(weight, None, (3, 32, 32), stride=2, padding=1)
    assert m.matrix.shape == (4096, 3072)
    inside = output_size(32, 4, 2, 1, 1)
    taps_per_axis = sum(  # in-bounds taps over the output positions of one axis
        sum(0 <= o * 2 - 1 + k < 32 for k in range(4)) for o in range(inside)
    )
    assert m.matrix.nnz == 16 * 3 * taps_per_axis**2
    x = rng.random((2, 3, 32, 32))
    ref = F.conv2d(_t(x), _t(weight), None, 2, 1).numpy()
    np.testing.assert_allclose(m(x.reshape(2, -1)), ref.reshape(2, -1), atol=1e-12)


def test_conv2d_bad_input_is_one_line_error() -> None:
    w = np.ones((4, 2, 3, 3))
    with pytest.raises(InvalidNetworkError, match="groups=2"):
        conv2d_map(w, None, (2, 5, 5), groups=2)  # 2 groups need C_in/groups = 1
    with pytest.raises(InvalidNetworkError, match="does not fit"):
        conv2d_map(w, None, (2, 2, 2))
    with pytest.raises(InvalidNetworkError, match="bias has 3 entries"):
        conv2d_map(w, np.ones(3), (2, 5, 5))
    with pytest.raises(InvalidNetworkError, match="NaN"):
        conv2d_map(np.full((4, 2, 3, 3), np.nan), None, (2, 5, 5))
    with pytest.raises(InvalidNetworkError, match="stride"):
        conv2d_map(w, None, (2, 5, 5), stride=0)
    with pytest.raises(InvalidNetworkError, match="padding"):
        conv2d_map(w, None, (2, 5, 5), padding=(1, 1, 1))
    with pytest.raises(InvalidNetworkError, match="4-D"):
        conv2d_map(np.ones((4, 2, 3)), None, (2, 5, 5))


# ---------------------------------------------------------------- pooling


@st.composite
def pool_cases(draw, dilated: bool):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))  # torch's limit
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 9))
    c = draw(st.integers(1, 3))
    ceil_mode = draw(st.booleans())
    return c, (kh, kw), (sh, sw), (dh, dw), (ph, pw), (h, w), ceil_mode, draw(st.integers(0, 99))


@FEW
@given(pool_cases(dilated=False), st.booleans())
def test_avg_pool2d_map_equals_torch(case, count_include_pad: bool) -> None:
    c, k, s, _, p, (h, w), ceil_mode, seed = case
    x = np.random.default_rng(seed).normal(size=(2, c, h, w))
    m = avg_pool2d_map((c, h, w), k, s, p, ceil_mode, count_include_pad)
    ref = F.avg_pool2d(_t(x), k, s, p, ceil_mode, count_include_pad).numpy()
    assert m.out_shape == ref.shape[1:]
    np.testing.assert_allclose(m(x.reshape(2, -1)), ref.reshape(2, -1), rtol=1e-14, atol=1e-14)
    assert np.all(m.matrix.data > 0) and not m.bias.any()


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(("size", "k", "s", "p"), [(5, 2, 2, 0), (6, 3, 2, 1), (7, 4, 3, 2)])
def test_avg_pool_window_past_the_padding_in_ceil_mode(size, k, s, p, count_include_pad) -> None:
    """With ceil_mode the last window runs past the padded input: torch divides by the part of
    it inside the padded input (count_include_pad) or inside the input."""
    x = np.random.default_rng(size).normal(size=(1, 2, size, size + 1))
    m = avg_pool2d_map((2, size, size + 1), k, s, p, True, count_include_pad)
    ref = F.avg_pool2d(_t(x), k, s, p, True, count_include_pad).numpy()
    assert m.out_shape == ref.shape[1:]
    np.testing.assert_allclose(m(x.reshape(1, -1)), ref.reshape(1, -1), rtol=1e-14, atol=1e-14)


@FEW
@given(pool_cases(dilated=True))
def test_max_pool2d_groups_equal_torch(case) -> None:
    c, k, s, d, p, (h, w), ceil_mode, seed = case
    x = np.random.default_rng(seed).normal(size=(2, c, h, w))
    g = max_pool2d_groups((c, h, w), k, s, p, d, ceil_mode)
    ref = F.max_pool2d(_t(x), k, s, p, d, ceil_mode).numpy()
    assert g.out_shape == ref.shape[1:]
    assert np.array_equal(g(x.reshape(2, -1)), ref.reshape(2, -1))
    # Groups hold only real inputs, each at most once, and never more than the kernel's taps.
    groups = g.groups()
    assert len(groups) == int(np.prod(g.out_shape))
    assert all(len(set(gr.tolist())) == gr.size <= k[0] * k[1] for gr in groups)
    assert g.index.min() >= 0 and g.index.max() < c * h * w


def test_max_pool_groups_of_a_padded_window_leave_the_padding_out() -> None:
    g = max_pool2d_groups((1, 2, 2), 2, stride=1, padding=1)  # 3x3 windows, corners mostly pad
    assert [gr.tolist() for gr in g.groups()] == [
        [0], [0, 1], [1], [0, 2], [0, 1, 2, 3], [1, 3], [2], [2, 3], [3],
    ]  # fmt: skip
    x = -np.array([1.0, 2.0, 3.0, 4.0])  # all negative: a padded 0 or -inf would show
    assert np.array_equal(g(x), [-1, -1, -2, -1, -1, -2, -3, -3, -4])


def test_max_pool_window_of_padding_only_is_an_error() -> None:
    with pytest.raises(InvalidNetworkError, match="padding only"):
        max_pool2d_groups((1, 3, 3), 1, stride=2, padding=1)


def test_pad_map_equals_torch_pad() -> None:
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5))
    pads = (1, 0, 2, 3)
    m = pad_map((3, 4, 5), pads, value=0.5)
    ref = _torch_pad(_t(x), pads, 0.5).numpy()
    assert m.out_shape == ref.shape[1:]
    assert np.array_equal(m(x.reshape(2, -1)), ref.reshape(2, -1))
    assert m.matrix.nnz == 3 * 4 * 5


def test_compose_merges_padding_and_pooling_into_one_map() -> None:
    x = np.random.default_rng(3).normal(size=(2, 2, 6, 6))
    pad = pad_map((2, 6, 6), 1)
    pool = avg_pool2d_map(pad.out_shape, 2, 2)
    both = compose(pool, pad)
    np.testing.assert_allclose(both(x.reshape(2, -1)), pool(pad(x.reshape(2, -1))), atol=1e-15)
    assert both.in_shape == (2, 6, 6) and both.out_shape == (2, 4, 4)
    with pytest.raises(InvalidNetworkError, match="compose"):
        compose(pad, pool)


def test_identity_map_is_flatten() -> None:
    m = identity_map((2, 3, 4))
    x = np.arange(24.0)
    assert np.array_equal(m(x), x) and m.matrix.nnz == 24


# ---------------------------------------------------------------- BatchNorm and constants


def test_batchnorm_folded_into_conv_equals_torch() -> None:
    rng = np.random.default_rng(4)
    weight, bias = rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    gamma[2] = 0.0  # a dead channel: its rows vanish from the folded matrix
    mean, var, eps = rng.normal(size=5), rng.random(5) + 0.1, 1e-5
    m = conv2d_map(weight, bias, (3, 7, 6), stride=2, padding=1)
    w2, b2 = fold_batchnorm(m.matrix, m.bias, gamma, beta, mean, var, eps, m.out_shape)
    x = rng.normal(size=(3, 3, 7, 6))
    z = F.conv2d(_t(x), _t(weight), _t(bias), 2, 1)
    ref = F.batch_norm(z, _t(mean), _t(var), _t(gamma), _t(beta), False, 0.0, eps).numpy()
    got = np.asarray(w2 @ x.reshape(3, -1).T).T + b2
    np.testing.assert_allclose(got, ref.reshape(3, -1), rtol=1e-12, atol=1e-12)
    per_channel = m.out_shape[1] * m.out_shape[2]
    assert sp.issparse(w2) and w2.nnz == m.matrix.nnz - m.matrix.nnz // 5
    assert not w2[[2 * per_channel]].toarray().any()


def test_batchnorm_folded_into_dense_gemm_equals_torch() -> None:
    rng = np.random.default_rng(5)
    w, b = rng.normal(size=(6, 4)), rng.normal(size=6)
    gamma, beta, mean = rng.normal(size=6), rng.normal(size=6), rng.normal(size=6)
    var = rng.random(6) + 0.5
    w2, b2 = fold_batchnorm(w, b, gamma, beta, mean, var, 1e-3, (6,))
    x = rng.normal(size=(4, 4))
    ref = F.batch_norm(_t(x @ w.T + b), _t(mean), _t(var), _t(gamma), _t(beta), False, 0, 1e-3)
    assert isinstance(w2, np.ndarray)
    np.testing.assert_allclose(x @ w2.T + b2, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_batchnorm_bad_parameters() -> None:
    with pytest.raises(InvalidNetworkError, match="3 entries"):
        batchnorm_affine(np.ones(2), np.ones(2), np.ones(2), np.ones(2), 1e-5, (3, 2, 2))
    with pytest.raises(InvalidNetworkError, match="positive"):
        batchnorm_affine(np.ones(1), np.ones(1), np.ones(1), -np.ones(1), 1e-5, (1, 2, 2))


@pytest.mark.parametrize(
    ("op", "first", "fn"),
    [
        ("Add", False, lambda x, c: x + c),
        ("Sub", False, lambda x, c: x - c),
        ("Sub", True, lambda x, c: c - x),
        ("Mul", False, lambda x, c: x * c),
        ("Div", False, lambda x, c: x / c),
    ],
)
@pytest.mark.parametrize("const_shape", [(), (1, 3, 1, 1), (3, 1, 1), (1, 3, 4, 5), (5,)])
def test_elementwise_affine_follows_onnx_broadcasting(op, first, fn, const_shape) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, 3, 4, 5))
    c = rng.random(const_shape) + 0.5
    s, t = elementwise_affine(op, c, (3, 4, 5), constant_first=first)
    np.testing.assert_allclose(s * x.reshape(-1) + t, fn(x, c).reshape(-1), rtol=1e-15)


def test_elementwise_affine_refusals() -> None:
    with pytest.raises(UnsupportedLayerError, match="not affine"):
        elementwise_affine("Div", 2.0, (3,), constant_first=True)
    with pytest.raises(UnsupportedLayerError, match="Pow"):
        elementwise_affine("Pow", 2.0, (3,))
    with pytest.raises(InvalidNetworkError, match="zero"):
        elementwise_affine("Div", np.array([1.0, 0.0, 1.0]), (3,))
    with pytest.raises(InvalidNetworkError, match="broadcast"):
        broadcast_constant(np.ones(4), (3, 2, 2))


def test_normalisation_folded_before_conv_equals_torch() -> None:
    """``(x - mean) / std`` per channel (CIFAR style) folded into the first conv."""
    rng = np.random.default_rng(7)
    mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    weight, bias = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    s1, t1 = elementwise_affine("Sub", mean, (3, 8, 8))
    s2, t2 = elementwise_affine("Div", std, (3, 8, 8))
    m = conv2d_map(weight, bias, (3, 8, 8), padding=1)
    # (x - mean) / std = s2 * (s1 * x + t1) + t2
    w2, b2 = fold_before(s2 * s1, s2 * t1 + t2, m.matrix, m.bias)
    x = rng.random((2, 3, 8, 8))
    ref = F.conv2d((_t(x) - _t(mean)) / _t(std), _t(weight), _t(bias), 1, 1).numpy()
    got = np.asarray(w2 @ x.reshape(2, -1).T).T + b2
    np.testing.assert_allclose(got, ref.reshape(2, -1), rtol=1e-12, atol=1e-12)
    assert w2.nnz == m.matrix.nnz


def test_affine_map_is_the_elementwise_affine() -> None:
    s, t = batchnorm_affine(
        np.array([2.0, 0.0]), np.array([1.0, 3.0]), np.zeros(2), np.ones(2), 0.0, (2, 2, 2)
    )
    m = affine_map(s, t, (2, 2, 2))
    x = np.arange(8.0)
    assert np.array_equal(m(x), s * x + t) and m.matrix.nnz == 4  # channel 1 scaled by 0
    with pytest.raises(InvalidNetworkError, match="tensor of 8"):
        affine_map(np.ones(3), np.ones(3), (2, 2, 2))


def test_fold_shape_mismatch_is_an_error() -> None:
    with pytest.raises(InvalidNetworkError, match="after a map"):
        fold_after(np.ones((3, 2)), np.ones(3), np.ones(2), np.ones(2))
    with pytest.raises(InvalidNetworkError, match="before a map"):
        fold_before(np.ones(3), np.ones(3), np.ones((3, 2)), np.ones(3))


# ---------------------------------------------------------------- attributes


def test_spatial_pads_and_output_size() -> None:
    assert spatial_pads(1) == (1, 1, 1, 1)
    assert spatial_pads((1, 2)) == (1, 2, 1, 2)
    assert spatial_pads([0, 1, 2, 3]) == (0, 1, 2, 3)
    with pytest.raises(InvalidNetworkError, match=">= 0"):
        spatial_pads(-1)
    assert output_size(28, 2, 1, 0, 0) == 27
    assert output_size(5, 2, 2, 0, 0, ceil_mode=True) == 3
    # torch drops a last window that would start in the end padding.
    assert output_size(5, 2, 2, 1, 1, ceil_mode=True) == 3
    assert F.max_pool2d(torch.zeros(1, 1, 5, 5), 2, 2, 1, ceil_mode=True).shape[-1] == 3


def _onnx_session(node, x_shape, inits=()):
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("op", ["Conv", "AveragePool", "MaxPool"])
def test_onnx_attributes_agree_with_onnxruntime(auto_pad: str, op: str) -> None:
    """auto_pad (odd total padding, so UPPER and LOWER differ), strides, dilations, groups
    and count_include_pad read the way onnxruntime runs them."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(8)
    x = rng.normal(size=(1, 4, 7, 8)).astype(np.float32)
    attrs: dict = {"auto_pad": auto_pad, "strides": [2, 1]}
    inits = []
    if op == "Conv":
        weight = rng.normal(size=(6, 2, 3, 2)).astype(np.float32)
        # onnxruntime refuses dilations with SAME padding.
        attrs.update(group=2, dilations=[1, 2] if auto_pad == "VALID" else [1, 1])
        inits = [numpy_helper.from_array(weight, "w")]
    else:
        attrs["kernel_shape"] = [3, 2]
    if op == "AveragePool":
        attrs["count_include_pad"] = 1
    node = helper.make_node(op, ["x", "w"] if op == "Conv" else ["x"], ["y"], **attrs)
    ref = _onnx_session(node, x.shape, inits).run(None, {"x": x})[0]
    if op == "Conv":
        kw = onnx_window_kwargs(op, attrs, (7, 8), kernel_hw=(3, 2))
        got = conv2d_map(weight, None, (4, 7, 8), **kw)
    elif op == "AveragePool":
        got = avg_pool2d_map((4, 7, 8), **onnx_window_kwargs(op, attrs, (7, 8)))
    else:
        got = max_pool2d_groups((4, 7, 8), **onnx_window_kwargs(op, attrs, (7, 8)))
    assert got.out_shape == ref.shape[1:]
    np.testing.assert_allclose(got(x.reshape(-1)), ref.reshape(-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(("size", "k", "s", "p"), [(5, 2, 2, 1), (6, 3, 2, 1), (7, 4, 3, 2)])
def test_ceil_mode_pooling_agrees_with_onnxruntime(op: str, size, k, s, p) -> None:
    """onnxruntime, like torch, drops a last window that would start in the end padding and
    divides by the window clipped to the padded input."""
    from onnx import helper

    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=1)
    if op == "AveragePool":
        attrs["count_include_pad"] = 1
    x = np.random.default_rng(size).normal(size=(1, 1, size, size)).astype(np.float32)
    ref = _onnx_session(helper.make_node(op, ["x"], ["y"], **attrs), x.shape).run(None, {"x": x})
    lower = max_pool2d_groups if op == "MaxPool" else avg_pool2d_map
    got = lower((1, size, size), **onnx_window_kwargs(op, attrs, (size, size)))
    assert got.out_shape == ref[0].shape[1:]
    np.testing.assert_allclose(got(x.reshape(-1)), ref[0].reshape(-1), rtol=1e-5, atol=1e-6)


def test_onnx_attribute_errors() -> None:
    with pytest.raises(UnsupportedLayerError, match="auto_pad"):
        onnx_auto_pads("SAME_MIDDLE", (5, 5), 3)
    assert onnx_auto_pads(b"NOTSET", (5, 5), 3) is None
    with pytest.raises(InvalidNetworkError, match="kernel_shape"):
        onnx_window_kwargs("Conv", {"kernel_shape": [3, 3]}, (5, 5), kernel_hw=(2, 2))
    with pytest.raises(InvalidNetworkError, match="kernel_shape"):
        onnx_window_kwargs("MaxPool", {}, (5, 5))
    with pytest.raises(InvalidNetworkError, match="kernel_shape"):
        onnx_window_kwargs("MaxPool", {"kernel_shape": [2, 2, 2]}, (5, 5))
    with pytest.raises(UnsupportedLayerError, match="Gemm"):
        onnx_window_kwargs("Gemm", {}, (5, 5))


# ---------------------------------------------------------------- real VNN-COMP 2021 nets


def _lower_onnx_chain(path: Path) -> tuple[list, tuple[int, int, int]]:
    """The nets' node chain as lowered maps (a test-only interpreter: the importer proper lives
    in nn2mip.onnx_io). Returns callables on flat float64 batches."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in inits)
    shape = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)[1:]
    steps: list = []
    cur = shape
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            w = inits[node.input[1]]
            b = inits[node.input[2]] if len(node.input) > 2 else None
            kw = onnx_window_kwargs("Conv", attrs, cur[1:], kernel_hw=w.shape[2:])
            m = conv2d_map(w, b, cur, **kw)
        elif node.op_type == "AveragePool":
            m = avg_pool2d_map(cur, **onnx_window_kwargs("AveragePool", attrs, cur[1:]))
        elif node.op_type == "MaxPool":
            m = max_pool2d_groups(cur, **onnx_window_kwargs("MaxPool", attrs, cur[1:]))
        elif node.op_type == "Pad":
            p = attrs["pads"]
            assert p[0] == p[1] == p[4] == p[5] == 0  # batch and channel unpadded
            m = pad_map(cur, (p[2], p[3], p[6], p[7]), attrs.get("value", 0.0))
        elif node.op_type == "Relu":
            steps.append(lambda z: np.maximum(z, 0.0))
            continue
        elif node.op_type == "Flatten":
            cur = (int(np.prod(cur)),)
            continue
        elif node.op_type == "Gemm":
            w, b = inits[node.input[1]], inits[node.input[2]]
            assert attrs.get("transB") == 1
            m = LinearMap(sp.csr_array(w), b, cur, (w.shape[0],))
        else:
            raise AssertionError(f"unexpected node {node.op_type}")
        steps.append(m)
        cur = m.out_shape
    return steps, shape


def _run(steps: list, x: np.ndarray) -> np.ndarray:
    for step in steps:
        x = step(x)
    return x


@pytest.mark.parametrize(
    "name",
    ["verivital/Convnet_avgpool.onnx", "verivital/Convnet_maxpool.onnx"]
    + [f"oval21/nets/cifar_{k}_kw.onnx" for k in ("base", "wide", "deep")],
)
def test_lowered_vnncomp_nets_agree_with_onnxruntime(name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = DATA / name
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (expected ../shared/data)")
    steps, shape = _lower_onnx_chain(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(9)
    for _ in range(3):
        x = rng.random((1, *shape)).astype(np.float32)  # MNIST/CIFAR-like pixels in [0, 1]
        ref = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)
        got = _run(steps, x.astype(np.float64).reshape(1, -1)).reshape(-1)
        # onnxruntime computes in float32: agreement to float32 accuracy of the output scale.
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * max(1.0, np.abs(ref).max()))
        assert np.argmax(got) == np.argmax(ref)


def test_lowered_verivital_net_equals_torch_float64() -> None:
    """Float64 reference for the same net: torch's conv, relu, max pool and linear."""
    import onnx
    from onnx import numpy_helper

    path = DATA / "verivital" / "Convnet_maxpool.onnx"
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (expected ../shared/data)")
    steps, shape = _lower_onnx_chain(path)
    p = {i.name: _t(numpy_helper.to_array(i)) for i in onnx.load(str(path)).graph.initializer}
    x = np.random.default_rng(10).random((4, *shape))
    z = F.max_pool2d(F.relu(F.conv2d(_t(x), p["conv1.0.weight"], p["conv1.0.bias"])), 4, 4)
    ref = F.linear(z.flatten(1), p["out.weight"], p["out.bias"]).numpy()
    got = _run(steps, x.reshape(4, -1))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
