import numpy as np
import pytest

from nn2mip.bounds import interval_bounds
from nn2mip.encoding import ACTIVE, CONSTANT, INACTIVE, PRUNED, UNSTABLE
from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs
from nn2mip.network import network_from_arrays
from nn2mip.region import ball_region


@pytest.mark.parametrize("name", ["dense", "unstructured", "structured"])
def test_fixed_inputs_reproduce_forward_pass(digits, digits_nets, name):
    """Encode over a ball (so unstable neurons carry binaries), then fix the inputs to points in
    the ball: the MIP outputs must equal the float64 forward pass."""
    net, _ = digits_nets[name]
    region = ball_region(digits.x_test[3], 0.1, "inf")
    form = build_formulation(net, region)
    stats = form.stats()
    assert stats.unstable > 0 and stats.active + stats.inactive > 0
    form.model.set_objective(form.output_cols[:1], np.ones(1))
    rng = np.random.default_rng(7)
    worst = 0.0
    for x in region.sample(100, rng):
        form.model.set_col_bounds(form.input_cols, x, x)
        res = solve_highs(form.model, mip_feasibility_tolerance=1e-9)
        assert res.status == "optimal"
        worst = max(worst, float(np.abs(res.x[form.output_cols] - net.forward(x)).max()))
    assert worst < 1e-6


def test_neuron_kinds_and_sizes():
    # Layer 1: neuron 0 unstable, neuron 1 always active, neuron 2 always inactive,
    # neuron 3 has no incoming weights (constant 0.5), neuron 4 feeds nothing (pruned).
    w1 = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0], [0.0, 0.0], [2.0, 0.0]])
    b1 = np.array([0.0, 1.0, -1.0, 0.5, 0.0])
    w2 = np.array([[1.0, 2.0, 3.0, 4.0, 0.0], [0.0, 1.0, 0.0, -1.0, 0.0]])
    b2 = np.zeros(2)
    net = network_from_arrays([w1, w2], [b1, b2])
    region = ball_region(np.array([0.5, 0.5]), 0.5, "inf")
    form = build_formulation(net, region)
    kinds = form.encoding.kinds[0].tolist()
    assert kinds == [UNSTABLE, ACTIVE, INACTIVE, CONSTANT, PRUNED]
    s = form.stats()
    assert (s.unstable, s.active, s.inactive, s.constant, s.pruned) == (1, 1, 1, 1, 1)
    assert s.binaries == 1
    # 2 inputs + (y, a) unstable + 1 active + 2 outputs; zero weights are not entries.
    assert s.cols == 7
    nnz_expected = (3 * 1 + 2) + (1 + 2) + 0 + (3 + 1 + 1) + (2 + 1)  # see formulation rows
    assert s.nonzeros == form.model.matrix().nnz
    assert s.nonzeros <= nnz_expected + 2
    # Exactness over the region.
    form.model.set_objective(form.output_cols, np.array([1.0, -1.0]))
    for x in np.random.default_rng(0).random((20, 2)):
        form.model.set_col_bounds(form.input_cols, x, x)
        res = solve_highs(form.model)
        np.testing.assert_allclose(res.x[form.output_cols], net.forward(x), atol=1e-7)


def test_zero_weights_never_become_entries(digits_nets, digits):
    net, _ = digits_nets["unstructured"]
    region = ball_region(digits.x_test[0], 0.05, "inf")
    form = build_formulation(net, region)
    a = form.model.matrix()
    assert np.all(a.data != 0.0)
    # Each encoded row of layer weights holds at most the nonzeros of its weight row.
    assert a.nnz <= 3 * net.num_weights + 4 * net.num_hidden_neurons + 2 * net.output_size


def test_pruned_network_has_fewer_binaries(digits, digits_nets):
    dense, _ = digits_nets["dense"]
    pruned, _ = digits_nets["structured"]
    region = ball_region(digits.x_test[5], 0.05, "inf")
    assert (
        build_formulation(pruned, region).stats().binaries
        < build_formulation(dense, region).stats().binaries
    )


def test_l1_ball_rows_limit_distance(digits, digits_nets):
    net, _ = digits_nets["dense"]
    x0 = digits.x_test[2]
    region = ball_region(x0, 1.0, "1")
    form = build_formulation(net, region, bounds=interval_bounds(net, region))
    # Maximize the distance moved along one pixel direction: capped by eps and the box.
    j = int(np.argmin(x0))
    form.model.set_objective(form.input_cols[[j]], np.ones(1))
    res = solve_highs(form.model, time_limit=30)
    assert res.x[form.input_cols[j]] == pytest.approx(min(1.0, x0[j] + 1.0), abs=1e-6)
    assert np.abs(res.x[form.input_cols] - x0).sum() <= 1.0 + 1e-6


def _pool_net(rng: np.random.Generator):
    """4 inputs -> 6 units, max over groups (one of them decided by the bias) -> 2 logits."""
    from nn2mip.network import AffineLayer, MaxGroups, Network

    w1 = rng.normal(size=(6, 4))
    b1 = rng.normal(size=6)
    b1[5] = 50.0  # unit 5 beats unit 4 everywhere: group [4, 5] is decided
    groups = MaxGroups.from_lists([[0, 1, 2], [2, 3], [4, 5], [1]])
    return Network(
        (
            AffineLayer(w1, b1, groups=groups),
            AffineLayer(rng.normal(size=(3, 4)), rng.normal(size=3), relu=True),
            AffineLayer(rng.normal(size=(2, 3)), rng.normal(size=2)),
        )
    )


def test_max_groups_mip_with_fixed_inputs_equals_the_forward_pass():
    from nn2mip.region import box_region

    rng = np.random.default_rng(11)
    net = _pool_net(rng)
    region = box_region(np.zeros(4), np.ones(4))
    form = build_formulation(net, region, bound_method="symbolic")
    kinds = form.encoding.kinds[0].tolist()
    assert kinds[2] == ACTIVE and kinds[0] == UNSTABLE  # decided group: no binary
    assert form.model.num_binaries >= 3  # group 0 has three candidates
    for sense in ("max", "min"):
        form.model.set_objective(form.output_cols[:1], np.ones(1), sense=sense)
        for x in region.sample(30, rng):
            form.model.set_col_bounds(form.input_cols, x, x)
            res = solve_highs(form.model, mip_feasibility_tolerance=1e-9)
            assert res.status == "optimal"
            np.testing.assert_allclose(res.x[form.output_cols], net.forward(x), atol=1e-6)
            hidden = res.x[form.encoding.layer_cols[0]]
            np.testing.assert_allclose(
                hidden, net.layers[0].activate(net.pre_activations(x)[0])[0], atol=1e-6
            )


def test_max_groups_mip_optimum_matches_sampling():
    """The MIP's max of an output over the box is at least every sampled value, and attained
    by its own input (re-checked by the forward pass)."""
    from nn2mip.region import box_region

    rng = np.random.default_rng(12)
    net = _pool_net(rng)
    region = box_region(np.zeros(4), np.ones(4))
    form = build_formulation(net, region, bound_method="interval")
    form.model.set_objective(form.output_cols[1:2], np.ones(1))
    res = solve_highs(form.model, mip_feasibility_tolerance=1e-9)
    assert res.status == "optimal"
    x = res.x[form.input_cols]
    assert abs(net.forward(x)[1] - res.objective) < 1e-6
    assert net.forward(region.sample(20000, rng))[:, 1].max() <= res.objective + 1e-6


def test_sparse_network_builds_the_same_model(digits_nets):
    import scipy.sparse as sp

    from nn2mip.network import AffineLayer, Network

    net, _ = digits_nets["unstructured"]
    sparse = Network(
        tuple(AffineLayer(sp.csr_array(la.weight), la.bias, la.relu) for la in net.layers)
    )
    region = ball_region(np.full(64, 0.5), 0.05, "inf")
    bounds = interval_bounds(net, region)
    a = build_formulation(net, region, bounds=bounds).model
    b = build_formulation(sparse, region, bounds=bounds).model
    assert (a.matrix() != b.matrix()).nnz == 0
    np.testing.assert_array_equal(a.row_lower(), b.row_lower())
    np.testing.assert_array_equal(a.col_upper(), b.col_upper())
    assert a.matrix().nnz > 0 and a.num_binaries == b.num_binaries


def test_pyomo_block_of_a_sparse_max_groups_net_is_exact():
    """The Pyomo path encodes sparse maps and max groups like the HiGHS path: same optimum,
    outputs equal the forward pass of its own inputs."""
    import pyomo.environ as pyo
    import scipy.sparse as sp

    from nn2mip.network import AffineLayer, Network
    from nn2mip.pyomo_backend import add_network, solve_pyomo
    from nn2mip.region import box_region

    rng = np.random.default_rng(13)
    dense = _pool_net(rng)
    net = Network(
        tuple(
            AffineLayer(sp.csr_array(la.weight), la.bias, la.relu, la.groups) for la in dense.layers
        )
    )
    region = box_region(np.zeros(4), np.ones(4))
    form = build_formulation(net, region, bound_method="interval")
    form.model.set_objective(form.output_cols[:1], np.ones(1))
    want = solve_highs(form.model, options={"mip_rel_gap": 0.0}).objective
    m = pyo.ConcreteModel()
    pn = add_network(m, net, region=region, bound_method="interval")
    m.obj = pyo.Objective(expr=pn.output_vars[0], sense=pyo.maximize)
    solve_pyomo(m, options={"mip_rel_gap": 0.0})
    assert pyo.value(m.obj) == pytest.approx(want, abs=1e-6)
    assert pn.get_error() < 1e-6
