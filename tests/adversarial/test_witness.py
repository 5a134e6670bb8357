import numpy as np

from adversarial.witness import check_witness, margin_of, project_to_region
from nn2mip.network import network_from_arrays
from nn2mip.region import ball_region


def test_projection_lands_inside_l1_ball_and_box(rng):
    for _ in range(50):
        c = rng.random(20)
        region = ball_region(c, 0.7, "1")
        z = project_to_region(c + rng.normal(size=20), region)
        assert region.contains(z, tol=0.0).all()


def test_witness_failing_forward_check_is_not_adversarial():
    # y0 = x, y1 = 0.5: at x = 0.4 class 1 leads by 0.1.
    net = network_from_arrays([np.array([[1.0], [0.0]])], [np.array([0.0, 0.5])])
    region = ball_region(np.array([0.6]), 0.1, "inf")
    inside = check_witness(net, np.array([0.55]), region, label=0, target=1)
    assert not inside.passed and inside.margin < 0
    # A candidate outside the ball is projected back first: still not adversarial.
    outside = check_witness(net, np.array([0.2]), region, label=0, target=1)
    assert outside.x[0] == 0.5 and not outside.passed
    assert margin_of(np.array([1.0, 3.0, 2.0]), 0, None) == 2.0
