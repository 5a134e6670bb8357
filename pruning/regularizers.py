"""Regularization-driven sparsity: L1 and group lasso with proximal steps (exact zeros), the
Structured Perspective Regularization (SPR) of Cacciola, Frangioni, Li and Lodi with the seed's
prune pipeline, and the ReLU-stability loss of Xiao et al. (2019)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from nn2mip.crown import concretize_box, crown_layers, interval_layers
from pruning.magnitude import magnitude_masks
from pruning.masks import Masks, apply_masks, full_masks, masks_from_zeros
from pruning.training import Regularizer, linear_layers, train

Hook = Callable[[nn.Module], None]


def combine_regularizers(*regs: Regularizer | None) -> Regularizer | None:
    """The sum of the given regularizers (``None`` entries skipped)."""
    active = [r for r in regs if r is not None]
    if not active:
        return None
    return lambda model, xb: sum((r(model, xb) for r in active), torch.zeros(()))


def combine_hooks(*hooks: Hook | None) -> Hook | None:
    """Run the given hooks in order (``None`` entries skipped)."""
    active = [h for h in hooks if h is not None]
    if not active:
        return None

    def run(model: nn.Module) -> None:
        for h in active:
            h(model)

    return run


# ---------------------------------------------------------------- L1 and group lasso (proximal)


def l1_prox(lam: float, lr: float, include_output: bool = True) -> Hook:
    """Proximal step of ``lam * ||W||_1`` after a gradient step of size ``lr``: soft-threshold
    every weight by ``lr * lam``, so small weights become exact zeros (biases are not
    penalized)."""
    thr = lr * lam

    def step(model: nn.Module) -> None:
        lins = linear_layers(model)
        with torch.no_grad():
            for lin in lins if include_output else lins[:-1]:
                w = lin.weight
                w.copy_(torch.sign(w) * torch.clamp(w.abs() - thr, min=0.0))

    return step


def neuron_group_norms(lin: nn.Linear) -> torch.Tensor:
    """L2 norm of each neuron's group: its incoming weight row and its bias."""
    sq = (lin.weight**2).sum(dim=1)
    if lin.bias is not None:
        sq = sq + lin.bias**2
    return torch.sqrt(sq)


def group_lasso_prox(lam: float, lr: float) -> Hook:
    """Proximal step of ``lam * sum_g ||w_g||_2`` over hidden neurons (group = incoming row and
    bias): block soft-thresholding ``w_g <- max(0, 1 - lr lam / ||w_g||) w_g``, which zeroes
    whole neurons exactly."""
    thr = lr * lam

    def step(model: nn.Module) -> None:
        with torch.no_grad():
            for lin in linear_layers(model)[:-1]:
                norms = neuron_group_norms(lin)
                scale = torch.clamp(1.0 - thr / torch.clamp(norms, min=1e-30), min=0.0)
                lin.weight.mul_(scale[:, None])
                if lin.bias is not None:
                    lin.bias.mul_(scale)

    return step


# ---------------------------------------------------------------- SPR


def spr_group_values(w: torch.Tensor, big_m: float, alpha: float) -> torch.Tensor:
    """SPR of each row of ``w`` (a group, ``|w_i| <= M``), without the factor lambda:
    ``min_{z in [u, 1]} alpha ||w||^2 / z + (1 - alpha) z`` with ``u = ||w||_inf / M``.

    With ``z* = sqrt(alpha / (1 - alpha)) ||w||``: ``2 sqrt(alpha (1 - alpha)) ||w||`` when
    ``u <= z* <= 1``; ``alpha ||w||^2 / u + (1 - alpha) u`` when ``z* < u``; and
    ``alpha ||w||^2 + 1 - alpha`` when ``z* > 1``. ``u`` is capped at 1 should a weight exceed M.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if big_m <= 0:
        raise ValueError(f"M must be positive, got {big_m}")
    sq = (w**2).sum(dim=1)
    # sqrt of a safe argument keeps the gradient finite at a zero group, whose value is 0.
    nonzero = sq > 0
    norm = torch.where(nonzero, torch.sqrt(torch.where(nonzero, sq, torch.ones_like(sq))), 0.0)
    u = torch.clamp(w.abs().amax(dim=1) / big_m, max=1.0)
    z_star = math.sqrt(alpha / (1.0 - alpha)) * norm
    mid = 2.0 * math.sqrt(alpha * (1.0 - alpha)) * norm
    low = alpha * sq / torch.clamp(u, min=1e-30) + (1.0 - alpha) * u
    high = alpha * sq + (1.0 - alpha)
    return torch.where(z_star < u, low, torch.where(z_star > 1.0, high, mid))


def layer_big_m(model: nn.Module) -> list[float]:
    """Per hidden layer, the largest absolute incoming weight or bias (the SPR's M)."""
    out = []
    for lin in linear_layers(model)[:-1]:
        m = float(lin.weight.detach().abs().max())
        if lin.bias is not None:
            m = max(m, float(lin.bias.detach().abs().max()))
        out.append(max(m, 1e-12))
    return out


def spr_regularizer(lam: float, alpha: float, big_m: Sequence[float] | None = None) -> Regularizer:
    """``lam * sum`` of the SPR over hidden neurons (group = incoming row and bias).

    ``big_m`` gives M per hidden layer (e.g. ``layer_big_m`` of a pretrained dense model);
    ``None`` uses the current max-abs weight of each layer at every step.
    """

    def reg(model: nn.Module, _xb: torch.Tensor) -> torch.Tensor:
        lins = linear_layers(model)[:-1]
        ms = list(big_m) if big_m is not None else layer_big_m(model)
        total = torch.zeros(())
        for lin, m in zip(lins, ms, strict=True):
            w = lin.weight if lin.bias is None else torch.cat([lin.weight, lin.bias[:, None]], 1)
            total = total + spr_group_values(w, m, alpha).sum()
        return lam * total

    return reg


def neuron_drop_masks(model: nn.Module, drop: Sequence[torch.Tensor]) -> Masks:
    """Masks removing the hidden neurons flagged in ``drop`` (incoming row and outgoing column);
    their biases are zeroed so compaction takes them out entirely."""
    lins = linear_layers(model)
    masks = full_masks(model)
    with torch.no_grad():
        for k, d in enumerate(drop):
            masks[k][d, :] = False
            masks[k + 1][:, d] = False
            if lins[k].bias is not None:
                lins[k].bias[d] = 0.0
    apply_masks(model, masks)
    return masks


def select_neurons_to_drop(
    model: nn.Module,
    threshold: float,
    empty_fraction: float,
    amount: float = 0.0,
    big_m: Sequence[float] | None = None,
) -> list[torch.Tensor]:
    """The seed's rule: a weight below ``threshold * M`` counts as zero and a neuron with at most
    ``empty_fraction`` of its incoming weights left is dropped; with ``amount`` > 0, at least
    that fraction of each hidden layer goes (lowest group norm first).

    The fraction counts only weights from inputs that survive (the previous layer's kept
    neurons): after a layer shrinks from 500 to 12 neurons, every next-layer neuron has at
    most 12/500 of its weights left and would otherwise be dropped, emptying the net."""
    ms = list(big_m) if big_m is not None else layer_big_m(model)
    out: list[torch.Tensor] = []
    for lin, m in zip(linear_layers(model)[:-1], ms, strict=True):
        w = lin.weight.detach()
        if out:
            w = w[:, ~out[-1]]
        alive = (w.abs() >= threshold * m).float().mean(dim=1)
        drop = alive <= empty_fraction
        k = int(amount * w.shape[0])
        if int(drop.sum()) < k:
            norms = neuron_group_norms(lin).detach().clone()
            norms[drop] = -1.0
            drop = drop.clone()
            drop[torch.argsort(norms)[:k]] = True
        if bool(drop.all()):  # never empty a layer
            drop[torch.argmax(neuron_group_norms(lin).detach())] = False
        out.append(drop)
    return out


def spr_prune(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    lam: float = 1e-3,
    alpha: float = 0.5,
    epochs: int = 20,
    lr: float = 1e-3,
    optimizer: str = "adam",
    big_m: Sequence[float] | None = None,
    threshold: float = 0.05,
    empty_fraction: float = 0.05,
    amount: float = 0.0,
    finetune_epochs: int = 10,
    restore: str = "regularized",
    seed: int = 0,
) -> tuple[nn.Module, Masks]:
    """The seed's pipeline on a (pretrained) model: train with SPR (M per layer from the model as
    given, unless ``big_m``), threshold small weights, drop neurons left (nearly) empty, restore
    the kept neurons' weights (thresholding only decides which neurons go), fine-tune with the
    neurons masked. ``restore="regularized"`` keeps the kept neurons' weights as SPR training
    left them (below-threshold entries included); ``"pretrained"`` puts back the weights the
    model had before SPR training. Compact the result with ``pruning.compact.compact``."""
    if restore not in ("regularized", "pretrained"):
        raise ValueError(f"restore must be 'regularized' or 'pretrained', got {restore!r}")
    pretrained = copy.deepcopy(model.state_dict())
    ms = list(big_m) if big_m is not None else layer_big_m(model)
    train(
        model,
        x,
        y,
        epochs,
        lr=lr,
        optimizer=optimizer,
        seed=seed,
        regularizer=spr_regularizer(lam, alpha, ms),
    )
    drop = select_neurons_to_drop(model, threshold, empty_fraction, amount, ms)
    # The threshold was only used to decide which neurons go; nothing was zeroed, so kept
    # neurons still have their full regularized weights unless the pretrained ones are wanted.
    if restore == "pretrained":
        model.load_state_dict(pretrained)
    masks = neuron_drop_masks(model, drop)
    if finetune_epochs > 0:
        train(model, x, y, finetune_epochs, lr=lr, optimizer=optimizer, masks=masks, seed=seed)
    return model, masks


def proximal_prune(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    lam: float,
    amount: float = 0.0,
    epochs: int = 20,
    lr: float = 1e-2,
    optimizer: str = "sgd",
    finetune_epochs: int = 10,
    seed: int = 0,
) -> tuple[nn.Module, Masks]:
    """Train with the L1 (``kind="l1"``) or group-lasso (``"group-lasso"``) proximal step, keep
    the exact zeros as masks, top up to ``amount`` (of weights for L1, of hidden neurons per
    layer for group lasso, smallest first) and fine-tune with the masks."""
    if kind == "l1":
        hook = l1_prox(lam, lr)
    elif kind == "group-lasso":
        hook = group_lasso_prox(lam, lr)
    else:
        raise ValueError(f"kind must be 'l1' or 'group-lasso', got {kind!r}")
    train(model, x, y, epochs, lr=lr, optimizer=optimizer, after_step=hook, seed=seed)
    if kind == "l1":
        masks = magnitude_masks(model, amount, scope="global", existing=masks_from_zeros(model))
        apply_masks(model, masks)
    else:
        dead = [neuron_group_norms(lin).detach() == 0 for lin in linear_layers(model)[:-1]]
        drop = select_neurons_to_drop(model, 0.0, -1.0, amount)
        masks = neuron_drop_masks(model, [d | e for d, e in zip(drop, dead, strict=True)])
    if finetune_epochs > 0:
        train(model, x, y, finetune_epochs, lr=lr, optimizer=optimizer, masks=masks, seed=seed)
    return model, masks


# ---------------------------------------------------------------- ReLU stability (Xiao et al.)


def _hidden_maps(model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor], list[bool]]:
    """The hidden layers' weights and biases (zeros where a layer has none), each followed by a
    ReLU, as the bound engine takes them."""
    lins = linear_layers(model)[:-1]
    w = [lin.weight for lin in lins]
    b = [
        lin.bias if lin.bias is not None else torch.zeros(lin.out_features, dtype=lin.weight.dtype)
        for lin in lins
    ]
    return w, b, [True] * len(lins)


def interval_bounds_torch(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    domain: tuple[float, float] | None = (0.0, 1.0),
    norm: str = "inf",
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Differentiable interval bounds ``(l, u)`` of every hidden pre-activation over the ball of
    radius ``eps`` around each row of ``x`` (norm ``"inf"`` or ``"1"``) within the box
    ``domain``, batch-wise (``nn2mip.crown.interval_layers``).

    For the L1 ball the first layer is bounded by ``W x + b +- eps * max_i |w_ji|`` (and by the
    box's interval image unless ``domain`` is None), interval arithmetic after it."""
    if norm not in ("inf", "1"):
        raise ValueError(f"norm must be 'inf' or '1', got {norm!r}")
    w, b, relu = _hidden_maps(model)
    x = x.to(w[0].dtype)
    lo = hi = None
    if domain is not None:
        lo = torch.clamp(x - eps, domain[0], domain[1])
        hi = torch.clamp(x + eps, domain[0], domain[1])
    elif norm == "inf":
        lo, hi = x - eps, x + eps
    l1 = (x, eps) if norm == "1" else None
    return interval_layers(w, b, relu, lo, hi, l1=l1)


def _ball_concretize(
    a: torch.Tensor,
    c: torch.Tensor,
    x: torch.Tensor,
    eps: float,
    norm: str,
    domain: tuple[float, float],
    upper: bool,
) -> torch.Tensor:
    """Upper (``upper=True``) or lower bound of ``a[b] @ v + c[b]`` over the ball of radius
    ``eps`` around ``x[b]`` (norm ``"inf"`` or ``"1"``) within the box ``domain``, per batch row.

    ``a`` is (B, m, n), ``c`` (B, m), ``x`` (B, n). The L-inf case is exact. For the L1 ball the
    bound relaxes the exact fractional knapsack (``nn2mip.crown.concretize_l1``) by letting
    every coordinate that can move at all move by a full ``domain`` width, so it is sound,
    differentiable, and only the top ``ceil(eps / width)`` coefficients per row matter.
    """
    lo_d, hi_d = domain
    sign = 1.0 if upper else -1.0
    if norm == "inf":
        lower = torch.clamp(x - eps, lo_d, hi_d)
        top = torch.clamp(x + eps, lo_d, hi_d)
        return -sign * concretize_box(-sign * a, -sign * c, lower, top)[0]
    width = hi_d - lo_d
    mid = torch.einsum("bmn,bn->bm", a, x) + c
    # Coordinates that can still move towards the side that grows sign * a.
    can_up = (x < hi_d).to(a.dtype)[:, None, :]
    can_dn = (x > lo_d).to(a.dtype)[:, None, :]
    budget = eps / width
    k = min(a.shape[-1], math.ceil(budget))
    frac = torch.full((k,), width, dtype=a.dtype)
    if k == math.ceil(budget) and budget < k:
        frac[-1] = (budget - (k - 1)) * width
    # Pick the k best coordinates without autograd (the (B, m, n) gain tensor is the costly
    # part), then take the gradient through the k picked coefficients only.
    s = sign * a
    with torch.no_grad():
        gain = s * torch.where(s > 0, can_up, -can_dn)
        top = gain.topk(k, dim=-1)
    picked = s.gather(-1, top.indices).abs() * (top.values > 0).to(a.dtype)
    return mid + sign * (picked * frac).sum(-1)


def symbolic_bounds_torch(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    norm: str = "inf",
    domain: tuple[float, float] = (0.0, 1.0),
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Differentiable CROWN bounds ``(l, u)`` of every hidden pre-activation over the L-inf or
    L1 ball of radius ``eps`` around each row of ``x``, within the box ``domain``.

    The bound engine's layer loop (``nn2mip.crown.crown_layers``: the earlier ReLUs relaxed on
    their already computed bounds, each layer intersected with the interval image of the
    previous one), concretized per row by ``_ball_concretize``. Never looser than
    ``interval_bounds_torch`` (for L-inf) and close to the bounds ``nn2mip``'s ``"symbolic"``
    method hands the MIP, so a ReLU-stability loss on them targets the neurons that really
    become binaries. Cost: one (batch, 2 width, inputs) tensor per layer and earlier layer.
    """
    if norm not in ("inf", "1"):
        raise ValueError(f"norm must be 'inf' or '1', got {norm!r}")
    w, b, relu = _hidden_maps(model)
    x = x.to(w[0].dtype)

    def conc(lam: torch.Tensor, const: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _ball_concretize(lam, const, x, eps, norm, domain, upper=False), lam

    return crown_layers(w, b, relu, conc, batch=x.shape[0])


STABILITY_LOSSES = ("tanh", "hinge", "ratio")


def stability_terms(lo: torch.Tensor, hi: torch.Tensor, loss: str = "tanh") -> torch.Tensor:
    """Per-neuron ReLU-stability loss on pre-activation bounds ``[lo, hi]`` (lower is more
    stable).

    ``"tanh"``: Xiao et al.'s ``-tanh(1 + lo * hi)``. It saturates once ``lo * hi`` is far below
    -1, which is where a deep layer's neurons sit over a wide ball (``lo * hi`` of -10^3 to
    -10^4 six layers down), so those neurons get no gradient.

    ``"hinge"``: ``relu(min(-lo, hi))``, the distance from the nearer bound to zero: zero on
    stable neurons, a gradient of size one on every unstable one. It is not scale-invariant, so
    training can lower it by shrinking the hidden layers' scale (and growing the output layer)
    without fixing a single sign; on the 6x100 seed net it cut the bound widths 10x and the
    unstable count by 2%.

    ``"ratio"``: ``relu(min(-lo, hi)) / (hi - lo)``, the share of the bound interval on the
    minority side, in [0, 1/2] on unstable neurons and 0 on stable ones. Scale-invariant like
    the signs themselves, with a gradient of order ``1 / (hi - lo)``, which stays usable where
    tanh's is zero.
    """
    if loss == "tanh":
        return -torch.tanh(1.0 + lo * hi)
    if loss == "hinge":
        return torch.relu(torch.minimum(-lo, hi))
    if loss == "ratio":
        return torch.relu(torch.minimum(-lo, hi)) / (hi - lo).clamp(min=1e-12)
    raise ValueError(f"stability loss must be one of {STABILITY_LOSSES}, got {loss!r}")


def relu_stability_regularizer(
    weight: float,
    eps: float,
    domain: tuple[float, float] = (0.0, 1.0),
    norm: str = "inf",
    bounds: str = "interval",
    loss: str = "tanh",
    rows: int = 0,
) -> Regularizer:
    """ReLU-stability loss: ``weight`` times the mean of ``stability_terms(l, u, loss)`` over
    hidden neurons and the batch, on bounds ``(l, u)`` over the ball around each row. With
    ``loss="tanh"`` it is Xiao et al.'s ``-mean(tanh(1 + l * u))``: ``l * u < 0`` exactly for
    unstable neurons, so the loss pushes them to a fixed sign; ``"ratio"`` keeps pushing the
    deep layers where tanh saturates (see ``stability_terms``).

    ``bounds="interval"`` (L-inf only, Xiao et al.'s choice) or ``"symbolic"``
    (``symbolic_bounds_torch``, L-inf or L1: the bounds the MIP gets by default; with the
    loose interval bounds a deep layer's neurons look unstable whatever the weights do).
    ``rows > 0``: the loss on the first ``rows`` rows of each batch only (symbolic bounds cost a
    (rows, width, inputs) tensor per layer).
    """
    if rows < 0:
        raise ValueError(f"rows must be 0 (all) or positive, got {rows}")
    if bounds not in ("interval", "symbolic"):
        raise ValueError(f"bounds must be 'interval' or 'symbolic', got {bounds!r}")
    if norm not in ("inf", "1"):
        raise ValueError(f"norm must be 'inf' or '1', got {norm!r}")
    if bounds == "interval" and norm != "inf":
        raise ValueError("interval RS bounds are for the L-inf ball; use bounds='symbolic'")
    if loss not in STABILITY_LOSSES:
        raise ValueError(f"stability loss must be one of {STABILITY_LOSSES}, got {loss!r}")

    def reg(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        if rows:
            xb = xb[:rows]
        if bounds == "symbolic":
            bnds = symbolic_bounds_torch(model, xb, eps, norm, domain)
        else:
            bnds = interval_bounds_torch(model, xb, eps, domain)
        return weight * mean_stability_terms(bnds, loss)

    return reg


def mean_stability_terms(
    bounds: Sequence[tuple[torch.Tensor, torch.Tensor]], loss: str = "tanh"
) -> torch.Tensor:
    """Mean of ``stability_terms(l, u, loss)`` over every (row, neuron) of the layers' bounds,
    so that each neuron counts once whatever its layer's width."""
    terms = [stability_terms(lo, hi, loss) for lo, hi in bounds]
    return torch.cat([t.flatten() for t in terms]).mean()
