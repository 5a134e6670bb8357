"""Pruning recipes as data: a TOML file that says how a net is trained, pruned and fine-tuned.

A recipe is an optional ``[dense]`` table (how to train the dense net when none is given) and
a list of ``[[steps]]``, run in order; the net is compacted between steps and at the end. A
step's ``method`` is one of ``STEP_METHODS``:

- ``"stability"``: the seed experiment's best pipeline: remove the lowest-norm hidden neurons
  (``neuron_fraction``), mask first-layer weights by magnitude (``weight_fraction``), then
  fine-tune with a ReLU-stability loss over an L1 (or L-inf) ball and optional adversarial
  training;
- ``"seed-spr"``: the seed paper's SPR pipeline (SPR training, the largest neuron threshold
  within ``max_accuracy_drop`` of train accuracy, fine-tuning with the neurons masked);
- ``"freeze"`` / ``"supermask"``: ``pruning.freezing`` from a fresh initialization;
- any method of ``pruning.methods.METHODS`` with its ``amount`` and ``MethodConfig`` fields.

    recipe = load_recipe("data/recipes/seed_6x500.toml")
    result = run_recipe(recipe, data.x_train, data.y_train)   # trains the dense net first
    net = compact_network(from_torch(result.model))

``recipe_from_tag`` reads the seed experiment's file-name tags
(``n0_w0_rs5_ft10d_lr0.02_sym2_ratio_adv5_from_spr_l0.001_a0.5_se20``) and ``legacy_tag``
writes them, so the result files named by them stay readable.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nn2mip.errors import InvalidInputError
from nn2mip.torch_io import from_torch, to_torch
from pruning.adversarial_training import ADV_NORMS, Adversary
from pruning.catalogue import MethodConfig, run_method
from pruning.compact import compact_network
from pruning.freezing import TrainableRecord, frozen_train, supermask_train
from pruning.magnitude import magnitude_masks
from pruning.masks import Masks, apply_masks
from pruning.methods import FROM_SCRATCH, METHODS
from pruning.regularizers import (
    STABILITY_LOSSES,
    layer_big_m,
    mean_stability_terms,
    neuron_drop_masks,
    relu_stability_regularizer,
    select_neurons_to_drop,
    spr_regularizer,
)
from pruning.structured import neuron_masks
from pruning.training import Regularizer, accuracy, linear_layers, make_mlp, train

OPTIMIZERS = ("sgd", "adam")
STABILITY_BOUNDS = ("interval", "symbolic")
# The seed's thresholds, most aggressive first (``SeedSprStep.thresholds``).
SPR_THRESHOLDS = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01)


def _check(ok: bool, name: str, msg: str) -> None:
    """Raise the one-line error ``"NAME MSG"`` unless ``ok``."""
    if not ok:
        raise InvalidInputError(f"{name} {msg}")


def _check_training(
    epochs: int, lr: float, batch_size: int, optimizer: str, name: str = "finetune_epochs"
) -> None:
    """Checks shared by every step that trains (``name``: the step's epochs field)."""
    _check(epochs >= 0, name, f"must be >= 0, got {epochs}")
    _check(lr > 0, "lr", f"must be positive, got {lr}")
    _check(batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}")
    _check(optimizer in OPTIMIZERS, "optimizer", f"must be sgd or adam, got {optimizer!r}")


@dataclass(frozen=True)
class DenseTraining:
    """How the dense net ``inputs -> hidden -> classes`` is trained (``make_mlp`` with the
    recipe's seed, then ``train``)."""

    hidden: tuple[int, ...]
    epochs: int = 50
    lr: float = 0.1
    batch_size: int = 128
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        _check(
            len(self.hidden) > 0 and all(h >= 1 for h in self.hidden),
            "hidden",
            f"must list positive widths, got {list(self.hidden)}",
        )
        _check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _check_training(self.epochs, self.lr, self.batch_size, self.optimizer, "epochs")


@dataclass(frozen=True)
class StabilityStep:
    """Neuron + first-layer magnitude pruning, fine-tuned with a ReLU-stability loss.

    ``stability_bounds="interval"`` takes the loss on interval bounds (for an L1 ball the first
    layer is ``W x + b +- eps * max |w|``, ``l1_ball_bounds``); ``"symbolic"`` on the CROWN-style
    bounds the MIP gets, on the first ``stability_rows`` rows of each batch (0: all), after
    physically dropping the removed neurons (the symbolic loss costs per neuron). With
    ``lr_decay`` the last 30% of the epochs run at ``lr / 10``.
    """

    method: str = "stability"
    neuron_fraction: float = 0.0
    weight_fraction: float = 0.0
    stability_weight: float = 0.0
    stability_loss: str = "tanh"
    stability_bounds: str = "interval"
    stability_rows: int = 0
    stability_eps: float = 5.0
    stability_norm: str = "1"
    finetune_epochs: int = 10
    lr: float = 0.05
    lr_decay: bool = False
    batch_size: int = 128
    optimizer: str = "sgd"
    adversarial: Adversary | None = None

    def __post_init__(self) -> None:
        for name in ("neuron_fraction", "weight_fraction"):
            v = getattr(self, name)
            _check(0.0 <= v < 1.0, name, f"must be in [0, 1), got {v}")
        _check(self.stability_weight >= 0, "stability_weight", "must be >= 0")
        _check(
            self.stability_loss in STABILITY_LOSSES,
            "stability_loss",
            f"must be one of {', '.join(STABILITY_LOSSES)}, got {self.stability_loss!r}",
        )
        _check(
            self.stability_bounds in STABILITY_BOUNDS,
            "stability_bounds",
            f"must be interval or symbolic, got {self.stability_bounds!r}",
        )
        _check(self.stability_rows >= 0, "stability_rows", "must be >= 0 (0: every row)")
        _check(
            self.stability_eps > 0, "stability_eps", f"must be positive, got {self.stability_eps}"
        )
        _check(
            self.stability_norm in ADV_NORMS,
            "stability_norm",
            f"must be '1' or 'inf', got {self.stability_norm!r}",
        )
        _check_training(self.finetune_epochs, self.lr, self.batch_size, self.optimizer)


@dataclass(frozen=True)
class SeedSprStep:
    """The seed paper's pipeline with the catalogue's SPR: ``spr_epochs`` of SPR training (M per
    layer from the starting net), the largest of ``thresholds`` whose neuron drop costs at most
    ``max_accuracy_drop`` of the SPR-trained train accuracy (nearly empty neurons: at most
    ``empty_fraction`` of the live incoming weights above it), then ``finetune_epochs`` with the
    dropped neurons masked and the others kept as trained."""

    method: str = "seed-spr"
    spr_lambda: float = 0.001
    spr_alpha: float = 0.5
    spr_epochs: int = 20
    max_accuracy_drop: float = 0.005
    thresholds: tuple[float, ...] = SPR_THRESHOLDS
    empty_fraction: float = 0.05
    finetune_epochs: int = 10
    lr: float = 0.1
    batch_size: int = 128
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        _check(self.spr_lambda >= 0, "spr_lambda", f"must be >= 0, got {self.spr_lambda}")
        _check(0 < self.spr_alpha < 1, "spr_alpha", f"must be in (0, 1), got {self.spr_alpha}")
        _check(self.spr_epochs >= 1, "spr_epochs", f"must be >= 1, got {self.spr_epochs}")
        _check(0 <= self.max_accuracy_drop <= 1, "max_accuracy_drop", "must be in [0, 1]")
        _check(
            len(self.thresholds) > 0 and all(t > 0 for t in self.thresholds),
            "thresholds",
            "must list positive numbers",
        )
        _check(0 <= self.empty_fraction < 1, "empty_fraction", "must be in [0, 1)")
        _check_training(self.finetune_epochs, self.lr, self.batch_size, self.optimizer)


@dataclass(frozen=True)
class FreezeStep:
    """Train only ``train_layers`` (indices among the Linear layers, -1 the output layer) and,
    with ``train_biases``, every bias, of a fresh initialization (``pruning.freezing``)."""

    method: str = "freeze"
    train_layers: tuple[int, ...] = (-1,)
    train_biases: bool = False
    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _check_training(self.epochs, self.lr, 1, self.optimizer, "epochs")


@dataclass(frozen=True)
class SupermaskStep:
    """Edge-popup over a fresh, frozen initialization: learn which ``1 - amount`` of each
    layer's weights to keep (``pruning.freezing.supermask_train``)."""

    method: str = "supermask"
    amount: float = 0.5
    epochs: int = 10
    lr: float = 0.1
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        _check(0 <= self.amount < 1, "amount", f"must be in [0, 1), got {self.amount}")
        _check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _check_training(self.epochs, self.lr, 1, self.optimizer, "epochs")


@dataclass(frozen=True)
class CatalogueStep:
    """One method of ``pruning.catalogue`` at ``amount``; the other fields of the step are
    ``MethodConfig``'s (its ``seed`` is the recipe's)."""

    method: str
    amount: float
    config: MethodConfig = field(default_factory=MethodConfig)

    def __post_init__(self) -> None:
        _check(self.method in METHODS, "method", f"must be one of {', '.join(STEP_METHODS)}")
        _check(0 <= self.amount < 1, "amount", f"must be in [0, 1), got {self.amount}")
        c = self.config
        _check(c.epochs >= 1, "epochs", f"must be >= 1, got {c.epochs}")
        _check(c.rounds >= 1, "rounds", f"must be >= 1, got {c.rounds}")
        _check(0 < c.spr_alpha < 1, "spr_alpha", f"must be in (0, 1), got {c.spr_alpha}")
        _check_training(c.finetune_epochs, c.lr, c.batch_size, c.optimizer)


Step = StabilityStep | SeedSprStep | FreezeStep | SupermaskStep | CatalogueStep
_STEP_CLASSES: dict[str, type] = {
    "stability": StabilityStep,
    "seed-spr": SeedSprStep,
    "freeze": FreezeStep,
    "supermask": SupermaskStep,
}
STEP_METHODS: tuple[str, ...] = (*_STEP_CLASSES, *METHODS)


@dataclass(frozen=True)
class Recipe:
    """A named pruning recipe: how to train the dense net (optional) and the steps after it."""

    steps: tuple[Step, ...]
    name: str = ""
    description: str = ""
    seed: int = 0
    dense: DenseTraining | None = None

    def __post_init__(self) -> None:
        _check(len(self.steps) > 0, "steps", "must list at least one [[steps]] table")


# ------------------------------------------------------------------------------- reading


def _convert(value: Any, kind: str, name: str) -> Any:
    """``value`` read from TOML as the field type ``kind`` (a dataclass annotation string)."""
    bad = f"must be {kind.replace(' | None', '')}, got {value!r}"
    if kind == "bool":
        _check(isinstance(value, bool), name, bad)
        return value
    if kind == "int":
        _check(isinstance(value, int) and not isinstance(value, bool), name, bad)
        return value
    if kind == "float":
        _check(isinstance(value, int | float) and not isinstance(value, bool), name, bad)
        return float(value)
    if kind == "str":
        # Norms read naturally as numbers (norm = 1).
        _check(isinstance(value, str | int) and not isinstance(value, bool), name, bad)
        return str(value)
    if kind.startswith("tuple["):
        item = kind[len("tuple[") :].split(",")[0]
        _check(isinstance(value, list), name, f"must be a list, got {value!r}")
        return tuple(_convert(v, item, name) for v in value)
    raise AssertionError(f"no reader for field type {kind}")  # a new field type needs one


def _build(cls: type, table: dict[str, Any], where: str, skip: Sequence[str] = ()) -> Any:
    """``cls(**table)`` with each value checked against the field's type; one-line errors
    that name ``where`` and the field."""
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    kwargs: dict[str, Any] = {}
    try:
        for key, value in table.items():
            _check(key in known, key, f"is not a field here (known: {', '.join(known)})")
            kind = str(known[key].type)
            if key == "adversarial":
                _check(isinstance(value, dict), key, "must be a table {norm, eps, ...}")
                kwargs[key] = _build(Adversary, value, f"{where}.adversarial")
                continue
            kwargs[key] = _convert(value, kind, key)
        return cls(**kwargs)
    except InvalidInputError as err:
        if str(err).startswith(("recipe ", where)):
            raise
        raise InvalidInputError(f"{where}.{err}") from None
    except TypeError as err:  # a required field is missing
        missing = [f.name for f in fields(cls) if f.name not in kwargs and f.name not in skip]
        raise InvalidInputError(f"{where}: missing field(s) {', '.join(missing)} ({err})") from None


def _step_from_table(table: dict[str, Any], where: str) -> Step:
    method = table.get("method")
    if method not in STEP_METHODS:
        raise InvalidInputError(
            f"{where}.method must be one of {', '.join(STEP_METHODS)}, got {method!r}"
        )
    if method in _STEP_CLASSES:
        return _build(_STEP_CLASSES[method], table, where)
    rest = {k: v for k, v in table.items() if k not in ("method", "amount")}
    _check("amount" in table, f"{where}.amount", f"is required by method {method!r}")
    config = _build(MethodConfig, rest, where, skip=("seed",))
    amount = _convert(table["amount"], "float", f"{where}.amount")
    try:
        return CatalogueStep(method, amount, config)
    except InvalidInputError as err:
        raise InvalidInputError(f"{where}.{err}") from None


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """A ``Recipe`` from the parsed TOML table; ``source`` prefixes every error."""
    where = f"recipe {source}:"
    top = {k: v for k, v in data.items() if k not in ("steps", "dense")}
    allowed = ("name", "description", "seed")
    for key in top:
        _check(key in allowed, f"{where} {key}", f"is not a field (known: {', '.join(allowed)})")
    steps_raw = data.get("steps")
    _check(
        isinstance(steps_raw, list) and len(steps_raw) > 0,
        f"{where} steps",
        "must be one or more [[steps]] tables",
    )
    for i, s in enumerate(steps_raw):
        _check(isinstance(s, dict), f"{where} steps[{i}]", "must be a table")
    steps = tuple(_step_from_table(s, f"{where} steps[{i}]") for i, s in enumerate(steps_raw))
    dense = None
    if "dense" in data:
        _check(isinstance(data["dense"], dict), f"{where} dense", "must be a table")
        dense = _build(DenseTraining, data["dense"], f"{where} dense")
    name = _convert(top.get("name", ""), "str", f"{where} name")
    desc = _convert(top.get("description", ""), "str", f"{where} description")
    seed = _convert(top.get("seed", 0), "int", f"{where} seed")
    return Recipe(steps=steps, name=name, description=desc, seed=seed, dense=dense)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe TOML file (one-line ``InvalidInputError`` on any problem)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"recipe file {str(p)!r} not found")
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"recipe {p.name}: not valid TOML ({err})") from None
    recipe = recipe_from_dict(data, p.name)
    return recipe if recipe.name else replace(recipe, name=p.stem)


# ------------------------------------------------------------------------------- running


@dataclass
class RecipeResult:
    """The pruned model (not compacted after the last step), the last step's masks and, for
    freezing steps, what was trainable."""

    model: nn.Module
    masks: Masks
    trainable: TrainableRecord | None = None


# TODO(issue 20, bound engine): this is interval bounds with an L1-ball first layer, a copy of
# nn2mip.bounds' interval method in torch (and of pruning.regularizers.interval_bounds_torch for
# L-inf). Replace it by the bound engine's differentiable interval bounds once they take an L1
# ball; the result must stay bit-identical or the seed recipes' nets change.
def l1_ball_bounds(
    model: nn.Module, xb: torch.Tensor, eps: float
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Differentiable bounds ``(l, u)`` of every hidden pre-activation over the L1 ball of radius
    ``eps`` around each row of ``xb``: ``W x + b +- eps * max_i |w_ji|`` in the first layer (the
    bound the MIP uses for an L1 ball), interval arithmetic after it."""
    lins = linear_layers(model)
    first = lins[0]
    z = xb @ first.weight.T + first.bias
    r = eps * first.weight.abs().amax(dim=1)
    lo, hi = z - r, z + r
    out = [(lo, hi)]
    for lin in lins[1:-1]:
        a, b = torch.relu(lo), torch.relu(hi)
        c, d = (a + b) / 2, (b - a) / 2
        mid = c @ lin.weight.T + lin.bias
        rad = d @ lin.weight.abs().T
        lo, hi = mid - rad, mid + rad
        out.append((lo, hi))
    return out


def stability_regularizer(step: StabilityStep) -> Regularizer | None:
    """The step's ReLU-stability loss, or ``None`` at weight 0."""
    if step.stability_weight <= 0:
        return None
    w, eps, loss = step.stability_weight, step.stability_eps, step.stability_loss
    if step.stability_bounds == "symbolic":
        return relu_stability_regularizer(
            w, eps, norm=step.stability_norm, bounds="symbolic", loss=loss, rows=step.stability_rows
        )
    if step.stability_norm == "inf":
        return relu_stability_regularizer(w, eps, norm="inf", loss=loss, rows=step.stability_rows)
    rows = step.stability_rows

    def reg(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        xb = xb[:rows] if rows else xb
        return w * mean_stability_terms(l1_ball_bounds(model, xb, eps), loss)

    return reg


def compacted(model: nn.Module) -> nn.Module:
    """The model with its removed neurons physically dropped (float32, as ``to_torch``)."""
    return to_torch(compact_network(from_torch(model)))


def run_stability(
    step: StabilityStep, model: nn.Module, x: np.ndarray, y: np.ndarray, seed: int
) -> tuple[nn.Module, Masks]:
    """Run a ``StabilityStep`` on ``model`` (changed in place unless compacted first)."""
    masks = neuron_masks(model, step.neuron_fraction) if step.neuron_fraction > 0 else None
    if step.stability_bounds == "symbolic" and masks is not None:
        apply_masks(model, masks)
        model = compacted(model)
        masks = None
    if step.weight_fraction > 0:
        # Only the first layer is masked by magnitude; the neuron masks stay on the others.
        wm = magnitude_masks(model, step.weight_fraction, scope="layer", existing=masks)
        masks = dict(masks or {}) | {0: wm[0]}
        if len(wm) > len(masks):
            masks = {i: masks.get(i, wm[i]) for i in wm}
    reg = stability_regularizer(step)
    late = round(0.3 * step.finetune_epochs) if step.lr_decay else 0
    for epochs, lr in ((step.finetune_epochs - late, step.lr), (late, step.lr / 10)):
        if epochs > 0:
            train(
                model,
                x,
                y,
                epochs=epochs,
                lr=lr,
                batch_size=step.batch_size,
                optimizer=step.optimizer,
                masks=masks,
                regularizer=reg,
                seed=seed,
                adversary=step.adversarial,
            )
    return model, masks or {}


def spr_train(step: SeedSprStep, model: nn.Module, x: np.ndarray, y: np.ndarray, seed: int) -> None:
    """The SPR training of a ``SeedSprStep`` (in place; M per layer from ``model`` as given)."""
    reg = spr_regularizer(step.spr_lambda, step.spr_alpha, layer_big_m(model))
    train(
        model,
        x,
        y,
        step.spr_epochs,
        lr=step.lr,
        batch_size=step.batch_size,
        optimizer=step.optimizer,
        regularizer=reg,
        seed=seed,
    )


def run_seed_spr(
    step: SeedSprStep,
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    trained: nn.Module | None = None,
) -> tuple[nn.Module, Masks]:
    """Run a ``SeedSprStep``; ``trained``: the model after ``spr_train`` when already known
    (a cache), else it is trained here. ``M`` comes from ``model`` before SPR training."""
    ms = layer_big_m(model)
    if trained is None:
        spr_train(step, model, x, y, seed)
    else:
        model = trained
    base = accuracy(model, x, y)
    chosen = None
    for thr in step.thresholds:  # most aggressive first
        trial = copy.deepcopy(model)
        drop = select_neurons_to_drop(trial, thr, step.empty_fraction, 0.0, ms)
        neuron_drop_masks(trial, drop)
        if base - accuracy(trial, x, y) <= step.max_accuracy_drop:
            chosen = drop
            break
    if chosen is None:
        chosen = [
            torch.zeros(lin.out_features, dtype=torch.bool) for lin in linear_layers(model)[:-1]
        ]
    masks = neuron_drop_masks(model, chosen)
    train(
        model,
        x,
        y,
        step.finetune_epochs,
        lr=step.lr,
        batch_size=step.batch_size,
        optimizer=step.optimizer,
        masks=masks,
        seed=seed,
    )
    return model, masks


def _fresh(model: nn.Module, seed: int) -> nn.Module:
    """A fresh initialization of ``model``'s architecture (``make_mlp`` with ``seed``)."""
    lins = linear_layers(model)
    hidden = [lin.out_features for lin in lins[:-1]]
    return make_mlp(lins[0].in_features, hidden, lins[-1].out_features, seed)


def run_step(
    step: Step, model: nn.Module, x: np.ndarray, y: np.ndarray, seed: int = 0
) -> RecipeResult:
    """Run one step on ``model`` (a trained net; the from-scratch methods re-initialize its
    architecture with ``seed``)."""
    if isinstance(step, StabilityStep):
        return RecipeResult(*run_stability(step, model, x, y, seed))
    if isinstance(step, SeedSprStep):
        return RecipeResult(*run_seed_spr(step, model, x, y, seed))
    if isinstance(step, FreezeStep):
        model, rec = frozen_train(
            _fresh(model, seed),
            x,
            y,
            step.train_layers,
            step.train_biases,
            step.epochs,
            step.lr,
            step.optimizer,
            seed=seed,
        )
        return RecipeResult(model, {}, rec)
    if isinstance(step, SupermaskStep):
        model, masks, rec = supermask_train(
            _fresh(model, seed), x, y, step.amount, step.epochs, step.lr, step.optimizer, seed
        )
        return RecipeResult(model, masks, rec)
    if step.method in FROM_SCRATCH:
        model = _fresh(model, seed)
    cfg = replace(step.config, seed=seed)
    return RecipeResult(*run_method(model, x, y, step.method, step.amount, cfg))


def train_dense(dense: DenseTraining, x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    """The dense net of ``dense`` trained on ``(x, y)`` (classes ``0 .. max(y)``)."""
    model = make_mlp(x.shape[1], list(dense.hidden), int(np.max(y)) + 1, seed=seed)
    train(
        model,
        x,
        y,
        epochs=dense.epochs,
        lr=dense.lr,
        batch_size=dense.batch_size,
        optimizer=dense.optimizer,
        seed=seed,
    )
    return model


def run_recipe(
    recipe: Recipe,
    x: np.ndarray,
    y: np.ndarray,
    model: nn.Module | None = None,
    steps: Sequence[Step] | None = None,
) -> RecipeResult:
    """Run ``recipe`` on the training data ``(x, y)``: train the dense net (``recipe.dense``)
    unless ``model`` is given, then each step (``steps``: a part of the recipe's, when the
    earlier ones ran elsewhere), compacting between steps. ``model`` is not changed."""
    if model is None:
        if recipe.dense is None:
            raise InvalidInputError(
                f"recipe {recipe.name or '?'} has no [dense] table: give the model to prune"
            )
        model = train_dense(recipe.dense, x, y, recipe.seed)
    # A copy through the Network form, as a saved and reloaded model is.
    model = to_torch(from_torch(model))
    result = None
    todo = list(recipe.steps if steps is None else steps)
    for i, step in enumerate(todo):
        result = run_step(step, model, x, y, recipe.seed)
        if i < len(todo) - 1:
            model = compacted(result.model)
    assert result is not None
    return result


# ------------------------------------------------------------------------------- old tags

_NUM = r"-?[0-9.]+(?:e-?[0-9]+)?"
_BEST_TAG = re.compile(
    rf"n(?P<n>{_NUM})_w(?P<w>{_NUM})_rs(?P<rs>{_NUM})_ft(?P<ft>[0-9]+)(?P<d>d?)"
    rf"(?:_lr(?P<lr>{_NUM}))?(?:_sym(?P<sym>[0-9]+))?(?:_(?P<loss>hinge|ratio))?"
    rf"(?:_adv(?P<adv>{_NUM}))?(?:_from_spr_(?P<base>.+))?$"
)
_SPR_TAG = re.compile(rf"l(?P<lam>{_NUM})_a(?P<alpha>{_NUM})_se(?P<se>[0-9]+)$")
# The seed experiment's fixed settings behind its tags.
SEED_ADVERSARY = Adversary(5.0, "1", steps=10, weight=0.5, rows=32)


def seed_adversary(eps: float) -> Adversary:
    """The seed experiment's adversarial training at L1 radius ``eps``."""
    return replace(SEED_ADVERSARY, eps=eps)


def spr_step_from_tag(tag: str) -> SeedSprStep:
    """``l0.001_a0.5_se20`` -> the ``SeedSprStep`` that made it."""
    m = _SPR_TAG.match(tag)
    if m is None:
        raise InvalidInputError(f"SPR tag {tag!r} is not lL_aA_seE")
    return SeedSprStep(
        spr_lambda=float(m["lam"]), spr_alpha=float(m["alpha"]), spr_epochs=int(m["se"])
    )


def stability_step_from_tag(tag: str) -> tuple[StabilityStep, SeedSprStep | None]:
    """``nA_wB_rsC_ftD[d][_lrL][_symK][_LOSS][_advE][_from_spr_...]`` -> its step and, with a
    ``_from_spr_`` part, the SPR step it started from."""
    m = _BEST_TAG.match(tag)
    if m is None:
        raise InvalidInputError(
            f"tag {tag!r} is not nA_wB_rsC_ftD[d][_lrL][_symK][_LOSS][_advE][_from_spr_...]"
        )
    sym = int(m["sym"] or 0)
    step = StabilityStep(
        neuron_fraction=float(m["n"]),
        weight_fraction=float(m["w"]),
        stability_weight=float(m["rs"]),
        stability_loss=m["loss"] or "tanh",
        stability_bounds="symbolic" if sym > 0 else "interval",
        stability_rows=sym,
        finetune_epochs=int(m["ft"]),
        lr=float(m["lr"]) if m["lr"] else 0.05,
        lr_decay=bool(m["d"]),
        adversarial=seed_adversary(float(m["adv"])) if m["adv"] else None,
    )
    return step, spr_step_from_tag(m["base"]) if m["base"] else None


def recipe_from_tag(
    kind: str, tag: str, dense: DenseTraining | None = None, seed: int = 0
) -> Recipe:
    """The recipe behind a seed-experiment result name ``KIND_ARCH_TAG_eE_sS``: ``kind``
    "best" (``stability_step_from_tag``) or "spr" (``spr_step_from_tag``)."""
    if kind == "spr":
        steps: tuple[Step, ...] = (spr_step_from_tag(tag),)
    elif kind == "best":
        step, start = stability_step_from_tag(tag)
        steps = (step,) if start is None else (start, step)
    else:
        raise InvalidInputError(f"result kind {kind!r} is not best or spr")
    return Recipe(steps=steps, name=f"{kind}_{tag}", seed=seed, dense=dense)


def spr_tag(step: SeedSprStep) -> str:
    """The seed experiment's tag of a ``SeedSprStep`` (default settings besides the three)."""
    if replace(step, spr_lambda=0.001, spr_alpha=0.5, spr_epochs=20) != SeedSprStep():
        raise InvalidInputError("this SPR step has no tag in the seed experiment's naming")
    return f"l{step.spr_lambda:g}_a{step.spr_alpha:g}_se{step.spr_epochs}"


def stability_tag(step: StabilityStep, start: SeedSprStep | None = None) -> str:
    """The seed experiment's tag of a ``StabilityStep`` (and the SPR step it starts from)."""
    sym = step.stability_rows if step.stability_bounds == "symbolic" else 0
    adv = step.adversarial
    fixed = StabilityStep(
        neuron_fraction=step.neuron_fraction,
        weight_fraction=step.weight_fraction,
        stability_weight=step.stability_weight,
        stability_loss=step.stability_loss,
        stability_bounds=step.stability_bounds,
        stability_rows=step.stability_rows,
        finetune_epochs=step.finetune_epochs,
        lr=step.lr,
        lr_decay=step.lr_decay,
        adversarial=None if adv is None else seed_adversary(adv.eps),
    )
    if fixed != step or (step.stability_bounds == "symbolic" and sym == 0):
        raise InvalidInputError("this stability step has no tag in the seed experiment's naming")
    d = "d" if step.lr_decay else ""
    lr = f"_lr{step.lr:g}" if step.lr != 0.05 else ""
    symk = f"_sym{sym}" if sym > 0 else ""
    loss = f"_{step.stability_loss}" if step.stability_loss != "tanh" else ""
    advs = f"_adv{adv.eps:g}" if adv is not None else ""
    base = f"_from_spr_{spr_tag(start)}" if start is not None else ""
    return (
        f"n{step.neuron_fraction:g}_w{step.weight_fraction:g}_rs{step.stability_weight:g}"
        f"_ft{step.finetune_epochs}{d}{lr}{symk}{loss}{advs}{base}"
    )


def legacy_tag(recipe: Recipe) -> tuple[str, str]:
    """``(kind, tag)`` of ``recipe`` in the seed experiment's naming ("best" or "spr"); a
    recipe outside that naming raises ``InvalidInputError``."""
    s = recipe.steps
    if len(s) == 1 and isinstance(s[0], SeedSprStep):
        return "spr", spr_tag(s[0])
    if len(s) == 1 and isinstance(s[0], StabilityStep):
        return "best", stability_tag(s[0])
    if len(s) == 2 and isinstance(s[0], SeedSprStep) and isinstance(s[1], StabilityStep):
        return "best", stability_tag(s[1], s[0])
    raise InvalidInputError(
        f"recipe {recipe.name or '?'} has no tag in the seed experiment's naming"
    )
