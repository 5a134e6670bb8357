"""``nn2mip verify``: VNN-COMP output format, verdicts on our own and official networks, and
one-line errors for bad inputs (including ONNX operators nn2mip cannot encode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nn2mip.cli import main
from nn2mip.onnx_io import save_onnx
from nn2mip.vnnlib import load_vnnlib, read_counterexample
from tests.cli.bad_files import _property

ROOT = Path(__file__).resolve().parents[1]
MNIST_FC = ROOT / ".." / "shared" / "data" / "vnncomp_mnist_fc"


@pytest.fixture()
def digits_onnx(tmp_path, digits_nets, digits):
    """The structured digits net as ONNX and a correctly classified test image."""
    net, _ = digits_nets["structured"]
    model = save_onnx(net, tmp_path / "digits.onnx")
    i = int(np.flatnonzero(net.predict(digits.x_test) == digits.y_test)[0])
    return net, model, digits.x_test[i], int(digits.y_test[i])


def _errors(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


def test_verify_unsat_and_sat_on_own_network(tmp_path, capsys, digits_onnx):
    net, model, x, label = digits_onnx
    tiny = _property(tmp_path / "tiny.vnnlib", x, 1e-4, label, net.output_size)
    out = tmp_path / "res.txt"
    rc = main(["verify", str(model), str(tiny), "--timeout", "30", "--out", str(out)])
    assert rc == 0
    assert capsys.readouterr().out.splitlines()[0] == "unsat"
    assert out.read_text() == "unsat\n"
    wide = _property(tmp_path / "wide.vnnlib", x, 0.5, label, net.output_size)
    rc = main(["verify", str(model), str(wide), "--timeout", "30", "--out", str(out)])
    assert rc == 0
    assert capsys.readouterr().out.splitlines()[0] == "sat"
    text = out.read_text()
    assert text.startswith("sat\n((X_0 ") and text.rstrip().endswith(")")
    # The written counterexample reads back and violates the property on a fresh forward pass.
    cx, cy = read_counterexample(out)
    prop = load_vnnlib(wide)
    assert np.allclose(cy, net.forward(cx), atol=1e-12)
    assert prop.is_violated_by(cx, net.forward(cx), 1e-9)


def test_verify_official_sat_instance(tmp_path, capsys):
    onnx_file = MNIST_FC / "onnx" / "mnist-net_256x2.onnx"
    prop = MNIST_FC / "vnncomp2022" / "vnnlib" / "prop_1_0.03.vnnlib"
    if not (onnx_file.is_file() and prop.is_file()):
        pytest.skip(f"VNN-COMP mnist_fc data not found under {MNIST_FC.resolve()}")
    out = tmp_path / "out.txt"
    rc = main(["verify", str(onnx_file), str(prop), "--timeout", "60", "--out", str(out)])
    assert rc == 0 and capsys.readouterr().out.startswith("sat\n")
    x, y = read_counterexample(out)
    assert x.size == 784 and y.size == 10
    assert load_vnnlib(prop).is_violated_by(x, y, 1e-9)


def _unsupported_onnx(path: Path) -> Path:
    """Gemm -> Sigmoid: a valid ONNX model with an operator nn2mip cannot encode."""
    w = numpy_helper.from_array(np.ones((2, 3)), "w")
    b = numpy_helper.from_array(np.zeros(2), "b")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1, name="fc"),
            helper.make_node("Sigmoid", ["g"], ["y"], name="act"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 2])],
        initializer=[w, b],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_bad_inputs_give_one_line_errors(tmp_path, capsys, digits_onnx):
    net, model, x, label = digits_onnx
    good = _property(tmp_path / "good.vnnlib", x, 0.01, label, net.output_size)
    malformed = tmp_path / "bad.vnnlib"
    malformed.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1)\n")
    small = tmp_path / "small.vnnlib"
    small.write_text(
        "(declare-const X_0 Real)(declare-const Y_0 Real)"
        "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= Y_0 2))"
    )
    sig = _unsupported_onnx(tmp_path / "sig.onnx")
    pt = tmp_path / "p.txt"
    pt.write_text("0.1 0.2 0.3")
    cases = {
        "missing network": (["verify", str(tmp_path / "no.onnx"), str(good)], "not found"),
        "missing property": (["verify", str(model), str(tmp_path / "no.vnnlib")], "not found"),
        "malformed property": (["verify", str(model), str(malformed)], "bad.vnnlib:3"),
        "size mismatch": (["verify", str(model), str(small)], "1 inputs X_i but the network"),
        "unknown bounds": (["verify", str(model), str(good), "--bounds", "nope"], "nope"),
        "unsupported op (verify)": (["verify", str(sig), str(small)], "Sigmoid"),
        "unsupported op (encode)": (
            ["encode", str(sig), "--input", str(pt), "--eps", "0.1"],
            "Sigmoid",
        ),
    }
    for what, (argv, needle) in cases.items():
        if argv[0] == "verify":
            argv = [*argv, "--timeout", "5"]
        rc, err = _errors(capsys, argv)
        assert rc == 2, (what, err)
        assert err.startswith("nn2mip: error:") and "\n" not in err, (what, err)
        assert needle in err, (what, err)
    assert main(["verify", str(model), str(good), "--timeout", "0"]) == 2
    assert "must be a finite number > 0, got 0" in capsys.readouterr().err


def test_time_limit_is_an_alias_of_timeout() -> None:
    from nn2mip.cli import build_parser

    parser = build_parser("verify")
    for flag in ("--timeout", "--time-limit"):
        assert parser.parse_args(["verify", "n.onnx", "p.vnnlib", flag, "7.5"]).timeout == 7.5
