"""The end-to-end demo: train dense, prune, encode, attack both on the same instances, compare."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from adversarial.problems import AttackResult, untargeted_attack
from nn2mip.datasets import Dataset, load_digits
from nn2mip.errors import InvalidInputError
from nn2mip.network import Network
from nn2mip.serialize import save_network
from nn2mip.torch_io import from_torch
from pruning.compact import compact_network
from pruning.pairs import PairConfig, train_pair
from pruning.training import accuracy


@dataclass
class DemoConfig(PairConfig):
    """Knobs of the demo (how the pair is trained, then how it is attacked); the defaults give a
    mix of robust and adversarial instances."""

    eps: float = 0.05
    norm: str = "inf"
    num_images: int = 10
    time_limit: float = 60.0
    threads: int = 1

    def validate(self, num_test: int | None = None) -> None:
        """Refuse settings that cannot run, before any training (one-line ``InvalidInputError``)."""
        if not self.num_images >= 1:
            raise InvalidInputError(f"number of images must be >= 1, got {self.num_images}")
        if num_test is not None and self.num_images > num_test:
            raise InvalidInputError(
                f"number of images {self.num_images} exceeds the {num_test} test images"
            )
        if not (np.isfinite(self.eps) and self.eps >= 0):
            raise InvalidInputError(f"eps must be a finite number >= 0, got {self.eps}")
        if not (np.isfinite(self.time_limit) and self.time_limit > 0):
            raise InvalidInputError(f"time limit must be a number > 0, got {self.time_limit}")
        if self.threads < 1:
            raise InvalidInputError(f"threads must be >= 1, got {self.threads}")
        if self.norm not in ("inf", "1"):
            raise InvalidInputError(f"norm must be 'inf' or '1', got {self.norm!r}")
        if self.epochs < 1 or self.finetune_epochs < 0:
            raise InvalidInputError("epochs must be >= 1 and fine-tuning epochs >= 0")


@dataclass
class ModelSummary:
    name: str
    shape: str
    test_accuracy: float
    neurons: int
    nonzero_weights: int
    results: list[AttackResult] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        times = [r.solve_time for r in self.results]
        totals = [r.total_time for r in self.results]
        verdicts = [r.verdict for r in self.results]
        return {
            "model": self.name,
            "shape": self.shape,
            "test_accuracy": round(self.test_accuracy, 4),
            "neurons": self.neurons,
            "nonzero_weights": self.nonzero_weights,
            "median_binaries": float(np.median([r.stats.binaries for r in self.results])),
            "median_solve_time": float(np.median(times)),
            "median_total_time": float(np.median(totals)),
            "adversarial": verdicts.count("adversarial"),
            "robust": verdicts.count("robust"),
            "timeout": verdicts.count("timeout"),
            "unknown": verdicts.count("unknown"),
            "witnesses_checked": sum(
                1 for r in self.results if r.check is not None and r.check.passed
            ),
        }


@dataclass
class DemoReport:
    config: DemoConfig
    dense: ModelSummary
    pruned: ModelSummary
    image_indices: list[int]
    train_time: float

    def speedups(self) -> list[float]:
        """Per-instance total-time ratio dense / pruned (the same instance on both)."""
        return [
            d.total_time / max(p.total_time, 1e-9)
            for d, p in zip(self.dense.results, self.pruned.results, strict=True)
        ]

    def verdicts_agree(self) -> int:
        return sum(
            d.verdict == p.verdict
            for d, p in zip(self.dense.results, self.pruned.results, strict=True)
        )

    def as_dict(self) -> dict[str, object]:
        sp = self.speedups()
        return {
            "data": "digits (scikit-learn, 8x8, pixels in [0,1])",
            "eps": self.config.eps,
            "norm": self.config.norm,
            "images": self.image_indices,
            "train_time": round(self.train_time, 2),
            "models": [self.dense.row(), self.pruned.row()],
            "median_speedup": float(np.median(sp)),
            "total_time_speedup": sum(r.total_time for r in self.dense.results)
            / max(sum(r.total_time for r in self.pruned.results), 1e-9),
            "per_instance_speedup": [round(s, 3) for s in sp],
            "same_verdict": self.verdicts_agree(),
        }


def run_demo(
    cfg: DemoConfig,
    save_dir: str | Path | None = None,
    progress=None,
    say: Callable[[str], None] | None = None,
) -> DemoReport:
    """Train, prune, compact, then run the same untargeted instances on both networks.

    ``progress(name, image, result)`` is called per solved instance, ``say(message)`` per stage.
    """
    data = load_digits(seed=cfg.seed)
    cfg.validate(len(data.y_test))
    if save_dir is not None and Path(save_dir).exists() and not Path(save_dir).is_dir():
        raise InvalidInputError(f"save directory {save_dir} exists and is not a directory")
    say = say or (lambda _msg: None)
    t0 = time.perf_counter()
    say(
        f"training a dense {'x'.join(map(str, cfg.hidden))} MLP on digits ({cfg.epochs} epochs), "
        f"then a copy pruned {cfg.neuron_amount:.0%} of neurons and {cfg.weight_amount:.0%} of "
        f"weights ({cfg.finetune_epochs} fine-tuning epochs)"
    )
    dense_t, pruned_t = train_pair(data, cfg)
    train_time = time.perf_counter() - t0
    dense_n = from_torch(dense_t)
    pruned_n = compact_network(from_torch(pruned_t))
    say(
        f"trained in {train_time:.1f} s: dense {dense_n.describe()}, pruned "
        f"{pruned_n.describe()}; attacking {cfg.num_images} test image(s) on each "
        f"(L-{cfg.norm} eps {cfg.eps}, PGD then MIP)"
    )
    if save_dir is not None:
        save_network(dense_n, Path(save_dir) / "dense.safetensors", meta={"data": "digits"})
        save_network(pruned_n, Path(save_dir) / "pruned.safetensors", meta={"data": "digits"})
    # Instances: the first test images both networks classify correctly.
    ok = (dense_n.predict(data.x_test) == data.y_test) & (
        pruned_n.predict(data.x_test) == data.y_test
    )
    idx = [int(i) for i in np.flatnonzero(ok)[: cfg.num_images]]
    if len(idx) < cfg.num_images:
        say(f"only {len(idx)} test images are classified correctly by both networks")
    summaries = []
    for name, net, tm in (("dense", dense_n, dense_t), ("pruned", pruned_n, pruned_t)):
        s = _summary(name, net, tm, data)
        for i in idx:
            r = untargeted_attack(
                net,
                data.x_test[i],
                int(data.y_test[i]),
                cfg.eps,
                cfg.norm,
                time_limit=cfg.time_limit,
                threads=cfg.threads,
                torch_model=tm,
            )  # type: ignore[arg-type]
            s.results.append(r)
            if progress is not None:
                progress(name, i, r)
        summaries.append(s)
    return DemoReport(cfg, summaries[0], summaries[1], idx, train_time)


def _summary(name: str, net: Network, model: nn.Module, data: Dataset) -> ModelSummary:
    return ModelSummary(
        name=name,
        shape=net.describe(),
        test_accuracy=accuracy(model, data.x_test, data.y_test),
        neurons=net.num_hidden_neurons,
        nonzero_weights=net.num_weights,
    )


def format_report(rep: DemoReport) -> str:
    """The demo's table as plain text."""
    d = rep.as_dict()
    cols = [
        ("model", "{}"),
        ("shape", "{}"),
        ("test_accuracy", "{:.4f}"),
        ("neurons", "{}"),
        ("nonzero_weights", "{}"),
        ("median_binaries", "{:.0f}"),
        ("median_solve_time", "{:.3f}"),
        ("median_total_time", "{:.3f}"),
        ("adversarial", "{}"),
        ("robust", "{}"),
        ("timeout", "{}"),
        ("unknown", "{}"),
    ]
    header = [
        "model",
        "shape",
        "test acc",
        "neurons",
        "nonzeros",
        "binaries",
        "solve s (med)",
        "total s (med)",
        "adv",
        "robust",
        "timeout",
        "unknown",
    ]
    rows = [[fmt.format(m[k]) for k, fmt in cols] for m in d["models"]]  # type: ignore[index]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [
        f"digits, {len(rep.image_indices)} test images, untargeted L-{rep.config.norm} "
        f"eps={rep.config.eps}, HiGHS {rep.config.threads} thread(s)",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(
        f"speedup (dense/pruned, total time per instance): median {d['median_speedup']:.2f}x, "
        f"sum-of-times {d['total_time_speedup']:.2f}x; same verdict on "
        f"{d['same_verdict']}/{len(rep.image_indices)} instances; every adversarial witness "
        "re-checked by float64 and torch forward passes"
    )
    return "\n".join(lines)
