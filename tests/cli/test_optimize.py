"""``nn2mip optimize MODEL PROBLEM.toml``: the solution, its JSON, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nn2mip.cli import main
from nn2mip.network import network_from_arrays
from nn2mip.optimization import optimize
from nn2mip.scaling import Scaling, fold_scaling
from nn2mip.serialize import save_network

SCALING = Scaling(
    input_offset=np.array([0.1, 2.0]),
    input_factor=np.array([0.7, 4.0]),
    output_offset=np.array([1.0, 0.0, -2.0]),
    output_factor=np.array([0.5, 2.0, 3.0]),
)

PROBLEM = """
[objective]
sense = "max"
terms = { H2 = 1.0, bypass = -0.1 }

[[inputs]]
name = "bypass"
lower = 0.1
upper = 0.8

[[inputs]]
name = "steps"
lower = 2
upper = 6
integer = true

[outputs]
names = ["H2", "N2", "CO"]

[[constraints]]
name = "n2cap"
terms = { N2 = 1.0 }
upper = {cap}

[scaling]
input_offset = [0.1, 2.0]
input_factor = [0.7, 4.0]
output_offset = [1.0, 0.0, -2.0]
output_factor = [0.5, 2.0, 3.0]

[solver]
time_limit = 60
"""


@pytest.fixture()
def model_file(tmp_path):
    rng = np.random.default_rng(5)
    sizes = [2, 10, 10, 3]
    net = network_from_arrays(
        [rng.normal(size=(b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)],
        [rng.normal(size=b) * 0.3 for b in sizes[1:]],
    )
    return net, save_network(net, tmp_path / "m.safetensors")


def _cap(net):
    xs = np.array([[b, s] for b in np.linspace(0.1, 0.8, 15) for s in range(2, 7)])
    return float(np.median(fold_scaling(net, SCALING).forward(xs)[:, 1]))


def test_optimize_prints_and_writes_json(tmp_path, capsys, model_file):
    net, path = model_file
    cap = _cap(net)
    prob = tmp_path / "p.toml"
    prob.write_text(PROBLEM.replace("{cap}", repr(cap)))
    out = tmp_path / "sol.json"
    rc = main(["optimize", str(path), str(prob), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "status     optimal" in text and "re-check   passed" in text
    sol = json.loads(out.read_text())
    assert sol["status"] == "optimal" and set(sol["x"]) == {"bypass", "steps"}
    assert sol["x"]["steps"] == round(sol["x"]["steps"])
    # the JSON's outputs are the scaled model's forward pass at the JSON's inputs
    x = np.array([sol["x"]["bypass"], sol["x"]["steps"]])
    y = SCALING.unscale_outputs(net.forward(SCALING.scale_inputs(x)))
    np.testing.assert_allclose([sol["y"][k] for k in ("H2", "N2", "CO")], y, rtol=1e-12)
    assert y[1] <= cap + 1e-6
    # the same problem through the Python API gives the same optimum
    ref = optimize(
        fold_scaling(net, SCALING),
        {"H2": 1.0, "bypass": -0.1},
        [({"N2": 1.0}, "<=", cap)],
        bounds=[(0.1, 0.8), (2, 6)],
        integer=["steps"],
        input_names=["bypass", "steps"],
        output_names=["H2", "N2", "CO"],
    )
    assert sol["objective"] == pytest.approx(ref.objective, rel=1e-9)
    # an exhaustive check over the integer input: the optimum is no worse than a fine grid
    xs = np.array([[b, s] for b in np.linspace(0.1, 0.8, 2001) for s in range(2, 7)])
    ys = fold_scaling(net, SCALING).forward(xs)
    ok = ys[:, 1] <= cap
    assert sol["objective"] >= (ys[ok, 0] - 0.1 * xs[ok, 0]).max() - 1e-7


def test_json_flag_and_infeasible_exit_code(tmp_path, capsys, model_file):
    net, path = model_file
    prob = tmp_path / "p.toml"
    prob.write_text(PROBLEM.replace("{cap}", "-1e6"))
    rc = main(["optimize", str(path), str(prob), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 1 and info["status"] == "infeasible" and info["x"] == {}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s + "\n[extra]\n", "unknown key 'extra'"),
        (lambda s: s.replace('sense = "max"', 'sense = "up"'), "sense"),
        (lambda s: s.replace("upper = 0.8", "upper = inf"), "finite bounds"),
        (lambda s: s.replace("lower = 0.1\n", ""), "has no lower"),
        (lambda s: s.replace("H2 = 1.0, bypass", "H3 = 1.0, bypass"), "unknown variable 'H3'"),
        (lambda s: s.replace("N2 = 1.0 }", 'N2 = "a" }'), "must be a number"),
        (lambda s: s.replace("integer = true", "integer = 1"), "true or false"),
        (lambda s: s.replace('["H2", "N2", "CO"]', '["H2", "N2"]'), "2 output names"),
        (lambda s: s.replace("input_factor = [0.7, 4.0]", "input_factor = [0.7]"), "expected 2"),
        (lambda s: s.replace("time_limit = 60", "threads = 2"), "unknown key 'threads'"),
        (lambda s: s.replace("[objective]", "[objective"), "not valid TOML"),
        (lambda s: s.replace("upper = {cap}", "upper = 1\nlower = 2"), "empty"),
    ],
)
def test_bad_problem_files_give_one_line_errors(tmp_path, capsys, model_file, edit, match):
    _, path = model_file
    prob = tmp_path / "p.toml"
    prob.write_text(edit(PROBLEM).replace("{cap}", "0.0"))
    rc = main(["optimize", str(path), str(prob)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("nn2mip: error:") and err.count("\n") == 1 and match in err, err


def test_missing_files(tmp_path, capsys, model_file):
    _, path = model_file
    assert main(["optimize", str(path), str(tmp_path / "none.toml")]) == 2
    assert "problem file not found" in capsys.readouterr().err
    prob = tmp_path / "p.toml"
    prob.write_text(PROBLEM.replace("{cap}", "0.0"))
    assert main(["optimize", str(tmp_path / "none.safetensors"), str(prob)]) == 2
    assert "model file not found" in capsys.readouterr().err
