"""VNN-LIB parsing (DNF, boxes, line-numbered errors) and VNN-COMP counterexample files."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from nn2mip.errors import Nn2mipError, PropertyFileError
from nn2mip.vnnlib import load_vnnlib, parse_vnnlib, read_counterexample, write_counterexample

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VNN = DATA / "vnncomp_mnist_fc"

HEADER = """; two inputs, three outputs
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real) ; trailing comment
(declare-const Y_1 Real)
(declare-const Y_2 Real)
"""


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"shared data not found at {path} (expected ../shared/data beside the checkout)"
        )
    return path


def test_box_and_output_disjunction():
    prop = parse_vnnlib(
        HEADER
        + """
(assert (<= X_0 0.5))
(assert (>= X_0 -0.5))
(assert (<= X_1 1e-1))
(assert (>= X_1 0))
(assert (or
    (and (>= Y_0 Y_2))
    (and (<= Y_1 3.5) (>= (+ Y_0 (* -1 Y_1)) 0))
))
"""
    )
    assert (prop.num_inputs, prop.num_outputs) == (2, 3)
    assert len(prop.cases) == 1
    lo, hi, disjuncts = prop.cases[0]
    np.testing.assert_array_equal(lo, [-0.5, 0.0])
    np.testing.assert_array_equal(hi, [0.5, 0.1])
    assert len(disjuncts) == 2
    np.testing.assert_array_equal(disjuncts[0].C, [[-1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(disjuncts[0].d, [0.0])
    np.testing.assert_array_equal(disjuncts[1].C, [[0.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(disjuncts[1].d, [3.5, 0.0])
    assert prop.is_violated_by([0.0, 0.05], [2.0, 0.0, 1.0])  # Y_0 >= Y_2
    assert not prop.is_violated_by([0.0, 0.05], [0.0, 5.0, 1.0])
    assert not prop.is_violated_by([0.9, 0.05], [2.0, 0.0, 1.0])  # outside the box
    assert len(prop.input_regions()) == 1


def test_linear_terms_equalities_strict_and_chains():
    prop = parse_vnnlib(
        HEADER
        + """
(assert (and (<= 0 X_0 1) (>= 2 X_1 (- 1))))
(assert (< (- Y_0 Y_1 (* 2 Y_2)) (/ 3 2)))
(assert (= (* 0.5 (+ Y_0 1)) Y_2))
"""
    )
    (lo, hi, (dj,)) = prop.cases[0]
    np.testing.assert_array_equal(lo, [0.0, -1.0])
    np.testing.assert_array_equal(hi, [1.0, 2.0])
    np.testing.assert_allclose(dj.C, [[1, -1, -2], [0.5, 0, -1], [-0.5, 0, 1]])
    np.testing.assert_allclose(dj.d, [1.5, -0.5, 0.5])


def test_input_disjunction_gives_several_boxes_and_merges_equal_ones():
    prop = parse_vnnlib(
        HEADER
        + """
(assert (<= X_1 1))
(assert (>= X_1 0))
(assert (or
    (and (>= X_0 0) (<= X_0 1) (<= Y_0 Y_1))
    (and (>= X_0 2) (<= X_0 3) (>= Y_0 5))
    (and (>= X_0 0) (<= X_0 1) (>= Y_2 7))
))
"""
    )
    assert len(prop.cases) == 2
    (lo0, hi0, d0), (lo1, hi1, d1) = prop.cases
    np.testing.assert_array_equal([lo0, hi0], [[0, 0], [1, 1]])
    np.testing.assert_array_equal([lo1, hi1], [[2, 0], [3, 1]])
    assert len(d0) == 2 and len(d1) == 1
    assert prop.is_violated_by([2.5, 0.5], [6.0, 0.0, 0.0])
    assert not prop.is_violated_by([0.5, 0.5], [6.0, 0.0, 0.0])


def test_constant_false_disjunct_is_dropped():
    prop = parse_vnnlib(
        HEADER + "(assert (<= 0 X_0 1))(assert (<= 0 X_1 1))(assert (or (<= 1 0) (>= Y_0 1)))"
    )
    assert len(prop.cases[0].disjuncts) == 1


BAD = [
    ("(assert (<= X_0 1)", 7, "never closed"),
    ("(assert (<= X_0 1)))", 7, "unexpected"),
    ("\n(assert (<= X_7 1))", 8, "undeclared"),
    ("(assert (foo X_0 1))", 7, "unknown formula operator"),
    ("(assert (<= X_0 (sin X_1)))", 7, "unknown term operator"),
    ("(assert (<= X_0 Y_0))", 7, "mixing inputs"),
    ("(assert (<= (+ X_0 X_1) 1))", 7, "single X_i"),
    ("(assert (<= (* X_0 X_1) 1))", 7, "not linear"),
    ("(declare-const Z Real)", 7, "X_<i> or Y_<j>"),
    ("(declare-const X_9 Int)", 7, "only Real"),
    ("(assert (<= X_0 abc1))", 7, "undeclared"),
    ("(assert (not (<= Y_0 1)))", 7, "'not'"),
    ("(bogus)", 7, "unknown command"),
    ("(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= X_1 1))", 3, "no lower bound"),
    ("(assert (<= 0 X_1 1))\n(assert (<= X_0 1))\n(assert (>= X_0 2))", 9, "above its upper"),
]


@pytest.mark.parametrize(("text", "line", "what"), BAD)
def test_malformed_files_report_the_line(text, line, what):
    with pytest.raises(PropertyFileError) as info:
        parse_vnnlib(HEADER + text, source="p.vnnlib")
    msg = str(info.value)
    assert isinstance(info.value, Nn2mipError)
    assert msg.startswith(f"p.vnnlib:{line}:"), msg
    assert what in msg
    assert "\n" not in msg


def test_missing_property_file(tmp_path):
    with pytest.raises(PropertyFileError, match="not found"):
        load_vnnlib(tmp_path / "none.vnnlib")


# --------------------------------------------------------------------------- counterexamples


def test_write_counterexample_format_and_round_trip(tmp_path):
    x = np.array([0.1, 0.0, 1.0, 1e-7, 0.029999999329447746])
    y = np.array([-1.2, 3.0, 7.5e-12])
    path = write_counterexample(tmp_path / "ce.txt", x, y)
    text = path.read_text()
    assert text.startswith("((X_0 0.1)\n(X_1 0.0)\n(X_2 1.0)\n(X_3 0.0000001)\n")
    assert text.endswith("(Y_0 -1.2)\n(Y_1 3.0)\n(Y_2 0.0000000000075))\n")
    assert "e" not in text.replace("(", "")  # no exponent notation
    for p in (path, write_counterexample(tmp_path / "ce.counterexample.gz", x, y)):
        x2, y2 = read_counterexample(p)
        np.testing.assert_array_equal(x2, x)
        np.testing.assert_array_equal(y2, y)


def test_read_counterexample_errors(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("(\n(X_0 0.1)\n(X_1 zz)\n)\n")
    with pytest.raises(PropertyFileError, match=r"bad.txt:3: 'zz'"):
        read_counterexample(p)
    p.write_text("(\n(X_0 0.1)\n(X_2 0.3)\n(Y_0 1)\n)\n")
    with pytest.raises(PropertyFileError, match="0..n-1"):
        read_counterexample(p)


# --------------------------------------------------------------------------- real VNN-COMP files


@pytest.fixture(scope="module")
def vnn_props():
    files = sorted(_need(VNN / "vnncomp2022" / "vnnlib").glob("*.vnnlib"))
    assert len(files) == 30
    return {f.name: load_vnnlib(f) for f in files}


def test_all_shipped_properties_parse(vnn_props):
    index = {}
    with open(_need(VNN / "summary" / "vnnlib_to_mnist_test_index.csv")) as f:
        for row in csv.DictReader(f):
            index[Path(row["vnnlib_path"]).name] = (float(row["eps"]), int(row["label"]))
    for name, prop in vnn_props.items():
        assert (prop.num_inputs, prop.num_outputs) == (784, 10)
        assert len(prop.cases) == 1
        lo, hi, disjuncts = prop.cases[0]
        eps, label = index[name]
        assert np.all(lo >= 0) and np.all(hi <= 1) and np.all(lo <= hi)
        assert np.all(hi - lo <= 2 * eps + 1e-6)
        # "the label is not the strict winner": 9 disjuncts Y_j >= Y_label, one row each
        assert len(disjuncts) == 9
        others = set()
        for dj in disjuncts:
            assert dj.C.shape == (1, 10) and dj.d.tolist() == [0.0]
            assert dj.C[0, label] == 1.0 and dj.C.sum() == 0.0
            others.add(int(np.flatnonzero(dj.C[0] == -1.0)[0]))
        assert others == set(range(10)) - {label}


def test_label_comment_matches_index(vnn_props):
    for name, prop in vnn_props.items():
        text = (VNN / "vnncomp2022" / "vnnlib" / name).read_text().splitlines()[0]
        label = int(re.search(r"label: (\d+)", text).group(1))
        assert prop.cases[0].disjuncts[0].C[0, label] == 1.0


# Claimed "sat" by cgdtest, but its own X/Y pair does not satisfy any output disjunct.
KNOWN_BAD_COUNTEREXAMPLES = {"cgdtest/mnist-net_256x2_prop_1_0.05.counterexample.gz"}


def test_shipped_counterexamples_violate_their_property(vnn_props):
    from nn2mip.onnx_io import load_onnx

    nets = {}
    files = sorted((VNN / "results2022").glob("*/*.counterexample.gz"))
    checked = 0
    for f in files:
        if not gzip.open(f).read().strip():
            continue  # alpha_beta_crown's files are empty
        m = re.match(r"(mnist-net_256x\d)_(prop_\d+_0\.0\d)\.counterexample\.gz", f.name)
        net_name, prop_name = m.group(1), m.group(2) + ".vnnlib"
        if net_name not in nets:
            nets[net_name] = load_onnx(VNN / "onnx" / f"{net_name}.onnx")
        x, y = read_counterexample(f)
        prop = vnn_props[prop_name]
        y_ours = nets[net_name].forward(x)
        np.testing.assert_allclose(y_ours, y, atol=1e-4)
        key = f"{f.parent.name}/{f.name}"
        expected = key not in KNOWN_BAD_COUNTEREXAMPLES
        assert prop.is_violated_by(x, y_ours, tol=1e-6) == expected, key
        checked += 1
    assert checked >= 90
