"""Property-based fuzzing of the readers (hypothesis): truncations, byte flips and field edits
of safetensors, ONNX and VNN-LIB files. A reader may accept or refuse, but it refuses only with
the project's own error type, and what it accepts is exactly the network a reference reader
sees (``safetensors.numpy`` for our model files, onnxruntime for ONNX)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from nn2mip.errors import Nn2mipError
from nn2mip.network import network_from_arrays
from nn2mip.onnx_io import save_onnx
from nn2mip.serialize import FORMAT, VERSION, load_network, load_network_and_masks, save_network
from nn2mip.vnnlib import load_vnnlib

ort = pytest.importorskip("onnxruntime")

# 60 examples per test keeps CI fast; NN2MIP_FUZZ_EXAMPLES=2000 for a deeper run.
FUZZ = settings(
    max_examples=int(os.environ.get("NN2MIP_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_DIR = Path(tempfile.mkdtemp(prefix="nn2mip-fuzz-"))


def _net(sizes=(5, 4, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(b, a)) for a, b in zip(sizes, sizes[1:], strict=False)]
    return network_from_arrays(ws, [rng.normal(size=w.shape[0]) for w in ws])


NET = _net()
MASKS = [np.random.default_rng(1).random(ly.weight.shape) > 0.3 for ly in NET.layers]
ST_BYTES = save_network(NET, _DIR / "ref.safetensors", masks=MASKS).read_bytes()
ONNX_BYTES = save_onnx(NET, _DIR / "ref.onnx").read_bytes()
VNNLIB_TEXT = "\n".join(
    [f"(declare-const X_{i} Real)" for i in range(5)]
    + [f"(declare-const Y_{j} Real)" for j in range(2)]
    + [f"(assert (>= X_{i} -0.5))\n(assert (<= X_{i} 0.5))" for i in range(5)]
    + ["(assert (or (and (>= Y_1 Y_0)) (and (<= Y_1 -3.0))))"]
)


def _mutations(data: bytes):
    """Truncations and byte flips of ``data``."""
    n = len(data)
    trunc = st.integers(0, n - 1).map(lambda k: data[:k])
    flips = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8)

    def flip(edits):
        b = bytearray(data)
        for pos, val in edits:
            b[pos] = val
        return bytes(b)

    return st.one_of(trunc, flips.map(flip))


def _write(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=_DIR, suffix=suffix)
    with open(fd, "wb") as f:
        f.write(data)
    return Path(name)


def _check_safetensors(path: Path) -> None:
    """Accept or refuse (Nn2mipError only); if accepted, compare with safetensors.numpy."""
    try:
        net, masks = load_network_and_masks(path)
    except Nn2mipError:
        return
    ref = load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        relu = json.loads(f.metadata()["relu"])
    n_layers = sum(1 for k in ref if k.endswith(".weight"))
    assert len(net.layers) == n_layers == len(relu)
    assert set(ref) <= {
        f"layers.{i}.{t}" for i in range(n_layers) for t in ("weight", "bias", "mask")
    }
    for i, layer in enumerate(net.layers):
        np.testing.assert_array_equal(layer.weight, ref[f"layers.{i}.weight"])
        np.testing.assert_array_equal(layer.bias, ref[f"layers.{i}.bias"])
        assert layer.relu is relu[i]
        if f"layers.{i}.mask" in ref:
            np.testing.assert_array_equal(masks[i], ref[f"layers.{i}.mask"].astype(bool))
        else:
            assert masks[i] is None


@FUZZ
@given(_mutations(ST_BYTES))
def test_safetensors_bytes(data: bytes) -> None:
    path = _write(data, ".safetensors")
    try:
        _check_safetensors(path)
    finally:
        path.unlink()


@st.composite
def _edited_fields(draw):
    """A model file whose metadata and tensor set are edited independently of each other."""
    tensors = {}
    for i, layer in enumerate(NET.layers):
        tensors[f"layers.{i}.weight"] = layer.weight
        tensors[f"layers.{i}.bias"] = layer.bias
        tensors[f"layers.{i}.mask"] = MASKS[i].astype(np.uint8)
    keep = draw(st.lists(st.sampled_from(sorted(tensors)), unique=True, min_size=1))
    tensors = {k: tensors[k] for k in keep}
    if draw(st.booleans()):  # a tensor of the wrong shape or dtype under a valid name
        name = draw(st.sampled_from(sorted(tensors)))
        shape = draw(st.lists(st.integers(0, 6), min_size=0, max_size=3))
        dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8]))
        tensors[name] = np.ones(shape, dtype=dtype)
    relu = draw(
        st.one_of(
            st.lists(st.booleans(), max_size=5).map(json.dumps),
            st.lists(st.integers(-1, 2), max_size=5).map(json.dumps),
            st.text(max_size=12),
        )
    )
    header = {"format": FORMAT, "version": VERSION, "relu": relu}
    if draw(st.booleans()):
        header["sizes"] = json.dumps(draw(st.lists(st.integers(0, 6), max_size=5)))
    if draw(st.booleans()):
        header[draw(st.sampled_from(["format", "version", "relu", "x"]))] = draw(
            st.text(max_size=8)
        )
    return tensors, header


@FUZZ
@given(_edited_fields())
def test_safetensors_fields(case) -> None:
    tensors, header = case
    path = _DIR / "edited.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=header)
    _check_safetensors(path)


def _check_onnx(path: Path) -> None:
    """Accept or refuse (Nn2mipError only); if accepted and onnxruntime reads the file too,
    both compute the same function."""
    try:
        net = load_network(path)
    except Nn2mipError:
        return
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # the reference refuses it too: nothing to compare against
        return
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).uniform(-1, 1, size=(4, net.input_size))
    for row in x:
        feed = row.reshape([d if isinstance(d, int) else 1 for d in inp.shape] or [-1])
        try:
            ref = np.asarray(sess.run(None, {inp.name: feed.astype(np.float32)})[0], np.float64)
        except Exception:
            return
        ours = net.forward(row)
        if not np.all(np.isfinite(ref)) or np.max(np.abs(ref)) > 1e6:
            continue  # float32 overflow in the reference: not comparable
        assert ref.size == ours.size
        np.testing.assert_allclose(ours.reshape(-1), ref.reshape(-1), rtol=1e-3, atol=1e-3)


@FUZZ
@given(_mutations(ONNX_BYTES))
def test_onnx_bytes(data: bytes) -> None:
    path = _write(data, ".onnx")
    try:
        _check_onnx(path)
    finally:
        path.unlink()


@st.composite
def _edited_onnx(draw):
    import onnx

    model = onnx.load_from_string(ONNX_BYTES)
    g = model.graph
    what = draw(st.sampled_from(["op", "attr", "dims", "drop", "input", "output"]))
    if what == "op":
        node = draw(st.sampled_from(list(g.node)))
        node.op_type = draw(st.sampled_from(["Relu", "Gemm", "Sigmoid", "Add", "MatMul", "Foo"]))
    elif what == "attr":
        node = draw(st.sampled_from([n for n in g.node if n.op_type == "Gemm"]))
        for a in node.attribute:
            a.i = draw(st.integers(0, 1))
        node.attribute.add().CopyFrom(onnx.helper.make_attribute("alpha", draw(st.floats(-2, 2))))
    elif what == "dims":
        init = draw(st.sampled_from(list(g.initializer)))
        init.dims[0] = draw(st.integers(0, 7))
    elif what == "drop":
        del g.node[draw(st.integers(0, len(g.node) - 1))]
    elif what == "input":
        node = draw(st.sampled_from(list(g.node)))
        node.input[0] = draw(st.sampled_from(["input", "gemm_0", "relu_1", "nope", ""]))
    else:
        g.output[0].name = draw(st.sampled_from(["output", "gemm_1", "nope"]))
    return model.SerializeToString()


@FUZZ
@given(_edited_onnx())
def test_onnx_fields(data: bytes) -> None:
    path = _write(data, ".onnx")
    try:
        _check_onnx(path)
    finally:
        path.unlink()


@FUZZ
@given(
    st.one_of(
        _mutations(VNNLIB_TEXT.encode()),
        st.lists(
            st.sampled_from(
                ["(", ")", "assert", "or", "and", ">=", "<=", "X_0", "Y_1", "1e309", "-"]
            ),
            max_size=30,
        ).map(lambda toks: (VNNLIB_TEXT + " ".join(toks)).encode()),
    )
)
def test_vnnlib(data: bytes) -> None:
    path = _write(data, ".vnnlib")
    try:
        prop = load_vnnlib(path)
    except Nn2mipError:
        return
    finally:
        path.unlink()
    # Accepted: a well-formed property over the inputs and outputs it declares.
    assert prop.num_inputs >= 1 and prop.num_outputs >= 1
    for case in prop.cases:
        assert case.lower.shape == case.upper.shape == (prop.num_inputs,)
        assert np.all(case.lower <= case.upper)
