"""The networks and targeted max-margin instances every tool is given."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nn2mip.network import Network
from nn2mip.region import InputRegion, Norm, ball_region

DATA = Path(os.environ.get("NN2MIP_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


@dataclass
class Instance:
    """Maximize ``y[target] - y[label]`` over the ``norm`` ball of radius ``eps`` around ``x0``."""

    network_name: str
    index: int
    x0: np.ndarray
    label: int
    target: int
    eps: float
    norm: Norm

    @property
    def key(self) -> str:
        return f"{self.network_name}/#{self.index}:{self.label}->{self.target}"

    def region(self) -> InputRegion:
        return ball_region(self.x0, self.eps, self.norm, (0.0, 1.0))


@dataclass
class Suite:
    """A network and its instances."""

    name: str
    network: Network
    instances: list[Instance]
    description: str


def second_class(net: Network, x: np.ndarray) -> int:
    """The second-likeliest class of ``x`` (the most natural attack target)."""
    return int(np.argsort(-net.forward(x))[1])


def _targeted(
    name: str,
    net: Network,
    x: np.ndarray,
    y: np.ndarray,
    count: int,
    eps: float,
    norm: Norm,
    first: list[tuple[int, int]] | None = None,
) -> list[Instance]:
    """``first`` (index, target) pairs, then correctly classified images toward class 2."""
    out = [Instance(name, i, x[i], int(y[i]), t, eps, norm) for i, t in (first or [])[:count]]
    taken = {inst.index for inst in out}
    pred = net.predict(x[:2000])
    for i in np.flatnonzero(pred == y[:2000]):
        if len(out) >= count:
            break
        if int(i) in taken:
            continue
        out.append(Instance(name, int(i), x[i], int(y[i]), second_class(net, x[i]), eps, norm))
    return out


def gurobi_mnist(count: int = 10) -> Suite:
    """gurobi-ml's 784-50-50-10 MNIST ONNX model, L1 budget 5 (image 18 -> 8 first)."""
    from nn2mip.mnist import load_mnist
    from nn2mip.onnx_io import load_onnx

    net = load_onnx(DATA / "gurobi_ml" / "mnist_model.onnx")
    x, y = load_mnist(DATA / "mnist", "test")
    insts = _targeted("gurobi_ml 784-50-50-10", net, x, y, count, 5.0, "1", first=[(18, 8)])
    return Suite(insts[0].network_name, net, insts, "MNIST, L1 eps 5, pixels/255")


def vnncomp_256x2(count: int = 10) -> Suite:
    """VNN-COMP mnist-net_256x2 at L-inf eps 0.02, toward the second-likeliest class."""
    from nn2mip.mnist import load_mnist
    from nn2mip.onnx_io import load_onnx

    net = load_onnx(DATA / "vnncomp_mnist_fc" / "onnx" / "mnist-net_256x2.onnx")
    x, y = load_mnist(DATA / "mnist", "test")
    insts = _targeted("vnncomp 256x2", net, x, y, count, 0.02, "inf")
    return Suite(insts[0].network_name, net, insts, "MNIST, L-inf eps 0.02")


def digits_pair(count: int = 10, eps: float = 0.05) -> list[Suite]:
    """The demo's dense and pruned digits networks (trained here, seed 0), L-inf ``eps``."""
    import torch

    from nn2mip.datasets import load_digits
    from nn2mip.torch_io import from_torch
    from pruning.compact import compact_network
    from pruning.pairs import PairConfig, train_pair

    torch.set_num_threads(1)
    data = load_digits(seed=0)
    dense_t, pruned_t = train_pair(data, PairConfig())
    nets = {"dense": from_torch(dense_t), "pruned": compact_network(from_torch(pruned_t))}
    ok = np.ones(len(data.y_test), bool)
    for net in nets.values():
        ok &= net.predict(data.x_test) == data.y_test
    idx = np.flatnonzero(ok)[:count]
    suites = []
    for kind, net in nets.items():
        name = f"digits {kind} {net.describe()}"
        insts = [
            Instance(
                name,
                int(i),
                data.x_test[i],
                int(data.y_test[i]),
                second_class(net, data.x_test[i]),
                eps,
                "inf",
            )
            for i in idx
        ]
        suites.append(Suite(name, net, insts, f"digits 8x8, L-inf eps {eps}"))
    return suites


SUITES: dict[str, Callable[[int], list[Suite]]] = {
    "gurobi": lambda n: [gurobi_mnist(n)],
    "vnn256x2": lambda n: [vnncomp_256x2(n)],
    "digits": lambda n: digits_pair(n),
}
