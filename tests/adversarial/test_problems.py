import time

import numpy as np
import pytest

from adversarial.problems import targeted_attack, untargeted_attack
from adversarial.witness import check_witness, margin_of
from nn2mip.errors import InvalidInputError
from nn2mip.region import ball_region


def _correct(digits, net, start=0):
    pred = net.predict(digits.x_test)
    return [i for i in range(start, len(pred)) if pred[i] == digits.y_test[i]]


def test_tiny_eps_is_robust_and_large_eps_adversarial(digits, digits_nets):
    net, model = digits_nets["dense"]
    i = _correct(digits, net)[0]
    x, y = digits.x_test[i], int(digits.y_test[i])
    small = untargeted_attack(net, x, y, 1e-4, "inf", time_limit=60, torch_model=model)
    assert small.verdict == "robust"
    assert small.bound is not None and small.bound < 0
    big = untargeted_attack(net, x, y, 0.5, "inf", time_limit=60, torch_model=model)
    assert big.verdict == "adversarial"
    assert big.check is not None and big.check.passed
    chk = check_witness(net, big.witness, ball_region(x, 0.5, "inf"), y)
    assert chk.passed and chk.margin == pytest.approx(big.margin)


@pytest.mark.parametrize("norm,eps", [("inf", 0.08), ("1", 2.0)])
def test_loop_and_single_agree_and_witnesses_check(digits, digits_nets, norm, eps):
    net, model = digits_nets["structured"]
    for i in _correct(digits, net)[:4]:
        x, y = digits.x_test[i], int(digits.y_test[i])
        loop = untargeted_attack(net, x, y, eps, norm, time_limit=60, torch_model=model)
        single = untargeted_attack(net, x, y, eps, norm, time_limit=60, strategy="single")
        assert loop.verdict == single.verdict
        for r in (loop, single):
            if r.verdict == "adversarial":
                region = ball_region(x, eps, norm)
                assert region.contains(r.witness, tol=0.0).all()
                assert margin_of(net.forward(r.witness), y, None) > 0


@pytest.mark.parametrize(("norm", "eps"), [("inf", 0.03), ("inf", 0.08), ("inf", 0.15), ("1", 1.5)])
def test_branch_and_bound_agrees_with_the_mip(digits, digits_nets, norm, eps):
    net, model = digits_nets["dense"]
    for i in _correct(digits, net)[:5]:
        x, y = digits.x_test[i], int(digits.y_test[i])
        target = int(np.argsort(net.forward(x))[-2])
        mip = targeted_attack(net, x, y, target, eps, norm, time_limit=60, torch_model=model)
        assert mip.verdict in ("robust", "adversarial")
        for method in ("bab", "auto"):
            r = targeted_attack(
                net, x, y, target, eps, norm, time_limit=60, torch_model=model, method=method
            )
            assert r.verdict == mip.verdict, (i, method)
            if r.verdict == "adversarial":
                assert check_witness(net, r.witness, ball_region(x, eps, norm), y, target).passed
            elif r.decided_by == "bab":
                # A proven bound on the max margin, at or above the MIP's optimum.
                opt = targeted_attack(net, x, y, target, eps, norm, early_stop=False)
                assert r.bound < 0 and r.bound >= opt.margin - 1e-6


def test_targeted_optimum_matches_sampling_bound(digits, digits_nets):
    """Without early stop the MIP optimum is the true max margin: no sample beats it and
    the witness attains it."""
    net, _ = digits_nets["unstructured"]
    i = _correct(digits, net)[1]
    x, y = digits.x_test[i], int(digits.y_test[i])
    t = (y + 1) % 10
    r = targeted_attack(net, x, y, t, 0.05, "inf", time_limit=60, early_stop=False)
    region = ball_region(x, 0.05, "inf")
    samples = region.sample(5000, np.random.default_rng(0))
    out = net.forward(samples)
    assert (out[:, t] - out[:, y]).max() <= r.bound + 1e-6
    assert r.solver_status == "optimal"


def test_misclassified_center_is_its_own_witness(digits, digits_nets):
    net, _ = digits_nets["dense"]
    pred = net.predict(digits.x_test)
    wrong = np.flatnonzero(pred != digits.y_test)
    if wrong.size == 0:
        pytest.skip("the fixture network classifies every test image correctly")
    i = int(wrong[0])
    r = untargeted_attack(net, digits.x_test[i], int(digits.y_test[i]), 0.0)
    assert r.verdict == "adversarial" and r.decided_by == "clean"


def test_bad_arguments(digits, digits_nets):
    net, _ = digits_nets["dense"]
    x = digits.x_test[0]
    with pytest.raises(InvalidInputError, match="eps"):
        untargeted_attack(net, x, 0, -0.1)
    with pytest.raises(InvalidInputError, match="features"):
        untargeted_attack(net, x[:10], 0, 0.1)
    with pytest.raises(InvalidInputError, match="target"):
        targeted_attack(net, x, 3, 3, 0.1)
    with pytest.raises(InvalidInputError, match="method"):
        targeted_attack(net, x, 3, 4, 0.1, method="simplex")
    with pytest.raises(InvalidInputError, match="label"):
        untargeted_attack(net, x, 12, 0.1)


def test_auto_gives_the_mip_only_what_branch_and_bound_left(digits, digits_nets, monkeypatch):
    """With "auto", an undecided branch and bound's time counts against the instance's limit."""
    import adversarial.pipeline as pipeline
    from adversarial.bab import BabResult
    from nn2mip.budget import BALL_SHARES

    net, model = digits_nets["dense"]
    i = _correct(digits, net)[0]
    x, y = digits.x_test[i], int(digits.y_test[i])
    target = int(np.argsort(net.forward(x))[-2])
    limits = []
    real_solve = pipeline.solve_sign

    def slow_bab(network, lower, upper, disjuncts, bounds, deadline, **kwargs):
        time.sleep(max(deadline - time.perf_counter(), 0.0))  # used its whole share
        return BabResult("timeout", [False] * len(disjuncts), -np.inf)

    def spy(model, found_tol, cutoff, time_limit=None, threads=1):
        limits.append(time_limit)
        return real_solve(model, found_tol, cutoff, time_limit=time_limit, threads=threads)

    monkeypatch.setattr(pipeline, "bab_verify", slow_bab)
    monkeypatch.setattr(pipeline, "solve_sign", spy)
    targeted_attack(net, x, y, target, 0.05, "inf", time_limit=2.0, method="auto")
    assert limits and limits[0] <= 2.0 * (1 - BALL_SHARES.bab_share) + 0.05


@pytest.mark.parametrize("target", [None, 1])
def test_attack_bounds_run_on_the_given_torch_threads(monkeypatch, target):
    """Both attacks compute their bounds on ``threads`` torch threads and restore the count."""
    import torch

    import adversarial.pipeline as pipeline
    from nn2mip.network import network_from_arrays

    seen = []
    real = pipeline.build_formulation

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_formulation", spy)
    net = network_from_arrays([np.eye(2), np.array([[1.0, -1.0], [-1.0, 1.0]])], [[0, 0], [0, 0]])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = np.array([0.8, 0.2])
        if target is None:
            r = untargeted_attack(net, x, 0, 0.05, "inf", time_limit=10, threads=1)
        else:
            r = targeted_attack(net, x, 0, target, 0.05, "inf", time_limit=10, threads=1)
        assert r.verdict == "robust"
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_attack_gives_the_bounds_half_its_time_limit(digits, digits_nets, spy_method):
    net, _ = digits_nets["structured"]
    x, label = digits.x_test[0], int(digits.y_test[0])
    targeted_attack(net, x, label, (label + 1) % 10, 1e-3, time_limit=6.0, bound_method="spy")
    untargeted_attack(net, x, label, 1e-3, time_limit=30.0, bound_method="spy")
    assert spy_method == pytest.approx([3.0, 15.0], rel=1e-3)  # half of the time left
