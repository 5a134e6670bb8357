import numpy as np
import pytest

from nn2mip.bounds import compute_bounds, interval_bounds
from nn2mip.errors import InvalidInputError
from nn2mip.region import ball_region, box_region


@pytest.mark.parametrize("name", ["dense", "unstructured", "structured"])
@pytest.mark.parametrize("norm,eps", [("inf", 0.1), ("1", 1.5)])
def test_interval_bounds_hold_for_samples(digits, digits_nets, name, norm, eps):
    net, _ = digits_nets[name]
    region = ball_region(digits.x_test[0], eps, norm)
    b = interval_bounds(net, region)
    rng = np.random.default_rng(0)
    x = region.sample(10_000, rng)
    assert region.contains(x).all()
    for z, lo, hi in zip(net.pre_activations(x), b.lower, b.upper, strict=True):
        assert np.all(z >= lo) and np.all(z <= hi)


def test_bounds_of_a_point_are_the_forward_pass(digits_nets, rng):
    net, _ = digits_nets["dense"]
    x = rng.random(64)
    b = interval_bounds(net, box_region(x, x))
    for z, lo, hi in zip(net.pre_activations(x), b.lower, b.upper, strict=True):
        assert np.all(hi - lo < 1e-6)
        assert np.all((lo <= z[0]) & (z[0] <= hi))


def test_unknown_method_and_wrong_size(digits_nets):
    net, _ = digits_nets["dense"]
    with pytest.raises(InvalidInputError, match="unknown bound method"):
        compute_bounds(net, box_region(np.zeros(64), np.ones(64)), "magic")
    with pytest.raises(InvalidInputError, match="expects 64"):
        interval_bounds(net, box_region(np.zeros(3), np.ones(3)))


def test_time_limit_caps_anytime_methods_below_their_default(digits_nets, spy_method):
    net, _ = digits_nets["dense"]
    region = box_region(np.zeros(64), np.ones(64))
    for limit in (None, 5.0, 100.0, -1.0):
        compute_bounds(net, region, "spy", time_limit=limit)
    assert spy_method == [20.0, 5.0, 20.0, 0.0]
    # Fixed-cost methods take no budget and ignore the limit.
    b = compute_bounds(net, region, "interval", time_limit=0.0)
    assert b.method == "interval"


def test_registered_anytime_methods_stop_at_a_zero_budget(digits_nets):
    net, _ = digits_nets["dense"]
    region = box_region(np.zeros(64), np.ones(64))
    ref = interval_bounds(net, region)
    for name in ("alpha", "lp", "mip"):
        b = compute_bounds(net, region, name, time_limit=0.0)
        # Nothing past the starting bounds, and never looser than interval arithmetic.
        for lo, hi, rlo, rhi in zip(b.lower, b.upper, ref.lower, ref.upper, strict=True):
            assert np.all(lo >= rlo - 1e-9) and np.all(hi <= rhi + 1e-9)


def test_the_bound_and_encoding_modules_import_one_way():
    """No import cycle among the IR, bound, encoding and backend modules, counting imports
    inside functions too (a lazy import hides a cycle, it does not remove it)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "nn2mip"
    core = {
        "network", "region", "errors", "mip", "bounds_base", "crown", "bounds_lp", "bounds",
        "encoding", "formulation", "highs_backend", "pyomo_backend", "sign", "threads",
    }  # fmt: skip
    deps: dict[str, set[str]] = {}
    for name in core:
        tree = ast.parse((root / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        deps[name] = {m.split(".")[1] for m in found if m.startswith("nn2mip.")} & core
        assert not any(m.split(".")[0] in ("pruning", "adversarial") for m in found), name
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, f"import cycle: {' -> '.join((*path, m))}"
        if m in done:
            return
        for d in deps[m]:
            visit(d, (*path, m))
        done.add(m)

    for m in sorted(core):
        visit(m, ())
