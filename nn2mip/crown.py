"""The bound engine: interval arithmetic and CROWN / alpha-CROWN, once, in torch.

Three users share it:

* proofs (``interval_bounds``, ``crown_bounds``, ``alpha_bounds``): float64, every bound rounded
  outward (``outward``) so that float64 rounding can never make it unsound;
* the ReLU-stability regularizers of ``pruning``: the same layer loops on a batch of balls, in
  the model's dtype, differentiable in the weights (``interval_layers``, ``crown_layers``);
* branch and bound (``adversarial.bab``): ``relaxed_backward`` on a batch of sub-domains, with
  split constraints, per-row slopes ``alpha`` and split multipliers ``beta``.

CROWN (Zhang et al. 2018) bounds a linear function ``lam @ h_top + const`` of a layer's output
by walking back to the input and replacing each unstable ReLU on ``[l, u]`` by two lines that
sandwich it: the chord ``h <= u (z - l) / (u - l)`` above and ``h >= a z`` below, with
``a = 1`` if ``u >= -l`` else ``0`` (the adaptive choice) or, in alpha-CROWN (Xu et al. 2021),
any ``a`` in [0, 1] tuned per bounded row by projected gradient ascent. The linear function of
the input that results is concretized over the region: a box, or a box cut by an L1 ball
(exactly, by the fractional knapsack: spend the budget on the largest ``|lam_i|`` first).

Layer maps are dense tensors or sparse COO tensors (``layer_tensors``). A max-over-groups layer
is relaxed by ``max_relaxation`` (CROWN and interval bounds); alpha-CROWN and branch and bound
take ReLU networks only (``alpha_fits``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch

from nn2mip.bounds_base import NetworkBounds, check_region
from nn2mip.network import MaxGroups, Network
from nn2mip.region import InputRegion
from nn2mip.threads import torch_threads

# Outward rounding: absolute + relative slack, far below any tolerance the MIP solver uses.
ABS_SLACK = 1e-9
REL_SLACK = 1e-12
# Torch threads of the float64 proof passes (interval, CROWN): their products are a few hundred
# rows wide, where a second intra-op thread costs more than it saves (mnist_fc 256x6, 6x500 on
# 2 busy cores: 1 thread 2-5x faster than the numpy CROWN before it, 2 threads 1.3-2.7x slower;
# ``python -m tests.nn2mip.crown_reference``).
PROOF_THREADS = 1
# alpha-CROWN: Adam steps per layer, and their step size on alpha.
ALPHA_ITERS = 20
ALPHA_LR = 0.1

# A linear form's lower bound over the input region, and the inputs that attain it.
Concretizer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


# ----------------------------------------------------------------------------- layer maps


def layer_tensors(
    network: Network, dtype: torch.dtype = torch.float64
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[bool]]:
    """Weights (dense, or sparse COO for a sparse map), biases and ReLU flags as tensors."""
    ws, bs = [], []
    for layer in network.layers:
        if layer.is_sparse:
            coo = layer.weight.tocoo()
            idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
            val = torch.from_numpy(coo.data).to(dtype)
            w = torch.sparse_coo_tensor(idx, val, coo.shape, check_invariants=True).coalesce()
            # CSR copies of W and W^T: their products with dense rows are ~5x faster than COO's.
            w._nn2mip_csr = _torch_csr(layer.csr, dtype)
            w._nn2mip_t_csr = _torch_csr(sp.csr_array(layer.csr.T), dtype)
            ws.append(w)
        else:
            ws.append(torch.from_numpy(layer.weight).to(dtype))
        bs.append(torch.from_numpy(layer.bias).to(dtype))
    return ws, bs, [layer.relu for layer in network.layers]


def _torch_csr(m: sp.csr_array, dtype: torch.dtype) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data).to(dtype),
            m.shape,
            check_invariants=True,  # scipy's CSR is canonical; the check also silences a warning
        )


def _times_map(lam: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``lam @ w`` for ``lam`` (..., m) and a dense or sparse ``w`` (m, n)."""
    if w.layout == torch.strided:
        return lam @ w
    flat = lam.reshape(-1, lam.shape[-1])
    wt = getattr(w, "_nn2mip_t_csr", None)
    if wt is not None and wt.dtype == flat.dtype:
        return (wt @ flat.t()).t().reshape(*lam.shape[:-1], w.shape[1])
    return torch.sparse.mm(w.t(), flat.t()).t().reshape(*lam.shape[:-1], w.shape[1])


def _apply_map(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``h @ w.T`` for a batch ``h`` (..., n) and a dense or sparse ``w`` (m, n)."""
    if w.layout == torch.strided:
        return h @ w.T
    flat = h.reshape(-1, h.shape[-1])
    wc = getattr(w, "_nn2mip_csr", None)
    if wc is not None and wc.dtype == flat.dtype:
        return (wc @ flat.t()).t().reshape(*h.shape[:-1], w.shape[0])
    return torch.sparse.mm(w, flat.t()).t().reshape(*h.shape[:-1], w.shape[0])


def _abs_map(w: torch.Tensor) -> torch.Tensor:
    return w.abs()


def dense_rows(w: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    if w.layout == torch.strided:
        return w if rows is None else w[rows]
    return (w if rows is None else w.index_select(0, rows)).to_dense()


# ----------------------------------------------------------------------------- interval


def outward_t(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Widen bounds by a tiny slack to absorb floating-point rounding."""
    return lo - (ABS_SLACK + REL_SLACK * lo.abs()), hi + (ABS_SLACK + REL_SLACK * hi.abs())


def interval_image(
    w: torch.Tensor, b: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval image of the boxes ``[lo, hi]`` (..., n) under ``x -> W x + b`` (midpoint and
    radius: its gradient at a zero weight is the midpoint's, as for ``|w|``)."""
    mid = _apply_map((lo + hi) / 2, w) + b
    rad = _apply_map((hi - lo) / 2, _abs_map(w))
    return mid - rad, mid + rad


def post_activation(
    lo: torch.Tensor, hi: torch.Tensor, relu: bool, groups: object = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds on a layer's output from its pre-activation bounds (ReLU, max over groups or
    identity)."""
    if relu:
        return lo.clamp(min=0.0), hi.clamp(min=0.0)
    if groups is not None:
        return groups.reduce_max_t(lo), groups.reduce_max_t(hi)  # type: ignore[attr-defined]
    return lo, hi


def interval_layers(
    w: Sequence[torch.Tensor],
    b: Sequence[torch.Tensor],
    relu: Sequence[bool],
    x_lo: torch.Tensor | None,
    x_hi: torch.Tensor | None,
    l1: tuple[torch.Tensor, float] | None = None,
    widen: bool = False,
    groups: Sequence[object] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Interval arithmetic layer by layer over the boxes ``[x_lo, x_hi]`` ((n,) or (B, n)),
    returning every layer's pre-activation bounds.

    With ``l1 = (center, eps)`` the first layer is also bounded by ``|w . (x - c)| <= eps *
    ||w||_inf`` (sound for the L1 ball, often much tighter); without a box (``x_lo`` None) by
    that alone. ``widen`` rounds every layer outward (proofs). Differentiable."""
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    lo, hi = x_lo, x_hi
    for k in range(len(w)):
        if k == 0 and l1 is not None:
            zc = _apply_map(l1[0], w[0]) + b[0]
            r = l1[1] * dense_rows(w[0]).abs().amax(dim=1)
            if lo is None or hi is None:
                zl, zu = zc - r, zc + r
            else:
                zl, zu = interval_image(w[0], b[0], lo, hi)
                zl, zu = torch.maximum(zl, zc - r), torch.minimum(zu, zc + r)
        else:
            assert lo is not None and hi is not None, "interval bounds need a box or an L1 ball"
            zl, zu = interval_image(w[k], b[k], lo, hi)
        if widen:
            zl, zu = outward_t(zl, zu)
        out.append((zl, zu))
        lo, hi = post_activation(zl, zu, relu[k], None if groups is None else groups[k])
    return out


def interval_bounds(network: Network, region: InputRegion) -> NetworkBounds:
    """Interval arithmetic layer by layer, rounded outward; for an L1 ball the first layer also
    uses ``|w . (x - c)| <= eps * ||w||_inf``."""
    check_region(network, region)
    w, b, relu = layer_tensors(network)
    x_lo, x_hi = torch.from_numpy(region.lower), torch.from_numpy(region.upper)
    groups = [layer.groups for layer in network.layers]
    with torch.no_grad(), torch_threads(PROOF_THREADS):
        out = interval_layers(w, b, relu, x_lo, x_hi, _l1_of(region), widen=True, groups=groups)
    return NetworkBounds([lo.numpy() for lo, _ in out], [hi.numpy() for _, hi in out], "interval")


def _l1_of(region: InputRegion) -> tuple[torch.Tensor, float] | None:
    if region.norm == "1" and region.center is not None:
        return torch.from_numpy(region.center), float(region.eps)
    return None


# ----------------------------------------------------------------------------- CROWN


def relu_relaxation(
    lo: torch.Tensor, up: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ReLU sandwich on ``[lo, up]``: ``(upper slope, upper intercept, CROWN's adaptive
    lower slope, unstable mask)``; ``relu(z) <= su z + tu`` and ``relu(z) >= sl z`` on the
    interval (stable neurons exactly)."""
    active = lo >= 0.0
    unstable = (lo < 0.0) & (up > 0.0)
    width = torch.where(unstable, up - lo, torch.ones_like(up))
    su = torch.where(unstable, up / width, active.to(lo.dtype))
    tu = torch.where(unstable, -su * lo, torch.zeros_like(lo))
    sl = torch.where(unstable, (up >= -lo).to(lo.dtype), active.to(lo.dtype))
    return su, tu, sl, unstable


def max_relaxation(
    lam: torch.Tensor, lo: torch.Tensor, up: torch.Tensor, groups: MaxGroups
) -> tuple[torch.Tensor, torch.Tensor]:
    """A lower bound of ``lam @ y`` (lam (B, R, G)) for ``y_g = max_{i in g} z_i`` and ``z`` in
    ``[lo, up]`` (B, n), as ``lam_z @ z + const``: ``y_g >= z_j`` for the entry ``j`` of largest
    lower bound (for ``lam_g >= 0``), ``y_g <= max_i up_i`` (for ``lam_g < 0``), and
    ``y_g = z_j`` exactly when ``lo_j >= up_i`` for every other ``i`` (the max is decided).
    Returns ``(lam_z (B, R, n), const (B, R))``."""
    pad = torch.from_numpy(groups.padded())  # (G, S), -1 where a group is shorter
    valid = pad >= 0
    safe = pad.clamp(min=0)
    lo_e = torch.where(valid, lo[..., safe], -torch.inf)  # (B, G, S)
    up_e = torch.where(valid, up[..., safe], -torch.inf)
    best = lo_e.argmax(-1)  # (B, G) the entry of largest lower bound
    star = safe.expand(best.shape[0], -1, -1).gather(-1, best.unsqueeze(-1)).squeeze(-1)
    l_star = lo_e.gather(-1, best.unsqueeze(-1)).squeeze(-1)
    others = up_e.scatter(-1, best.unsqueeze(-1), -torch.inf).amax(-1)
    decided = l_star >= others
    u_max = up_e.amax(-1)
    lam_pos, lam_neg = lam.clamp(min=0.0), lam.clamp(max=0.0)
    on_star = lam_pos + lam_neg * decided.unsqueeze(1).to(lam.dtype)
    const = (lam_neg * torch.where(decided, 0.0, u_max).unsqueeze(1)).sum(-1)
    index = star.unsqueeze(1).expand(-1, lam.shape[1], -1)
    lam_z = torch.zeros(*lam.shape[:-1], lo.shape[-1], dtype=lam.dtype)
    return lam_z.scatter_add(-1, index, on_star), const


def backward(
    w: Sequence[torch.Tensor],
    b: Sequence[torch.Tensor],
    lam: torch.Tensor,
    const: torch.Tensor,
    lower: Sequence[torch.Tensor],
    upper: Sequence[torch.Tensor],
    relu: Sequence[bool] | None = None,
    splits: Sequence[torch.Tensor] | None = None,
    alpha: Sequence[torch.Tensor] | None = None,
    beta: Sequence[torch.Tensor] | None = None,
    want_scores: bool = False,
    groups: Sequence[MaxGroups | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
    """CROWN's backward pass: a linear function ``lam_x @ x + const_x`` of the input that is a
    lower bound of ``lam @ h + const`` on the region, where ``h`` is the output of the last of
    the layers given (weights ``w[k]``, biases ``b[k]``, ``k < len(lower)``).

    Shapes: ``lam`` (B, R, n_top), ``const`` (B, R); ``lower[k]``, ``upper[k]`` (B, n_k)
    pre-activation bounds; ``relu[k]`` whether layer k has a ReLU (default: all); ``splits[k]``
    (B, n_k) in {-1, 0, +1} (a split ``s z >= 0``, entering through ``beta[k]`` (B, R, n_k)
    >= 0); ``alpha[k]`` (B, R, n_k) lower slopes in [0, 1] (default: CROWN's adaptive choice).
    Returns ``(lam_x, const_x, scores)``; ``scores`` (if asked) per ReLU layer the cost of each
    unsplit unstable neuron's upper-line intercept (BaBSR's branching score, -1 where no split
    is possible). ``groups[k]``: layer k takes a max over these groups (``max_relaxation``).
    """
    scores: list[torch.Tensor] | None = [] if want_scores else None
    for k in range(len(lower) - 1, -1, -1):
        if groups is not None and groups[k] is not None:
            lam_z, c = max_relaxation(lam, lower[k], upper[k], groups[k])
            const = const + c + lam_z @ b[k]
            lam = _times_map(lam_z, w[k])
            continue
        if relu is not None and not relu[k]:  # identity: nothing to relax
            const = const + lam @ b[k]
            lam = _times_map(lam, w[k])
            continue
        lo, up = lower[k], upper[k]
        s = None
        if splits is not None:
            s = splits[k].to(lo.dtype)
            lo = torch.where(s > 0, lo.clamp(min=0.0), lo)
            up = torch.where(s < 0, up.clamp(max=0.0), up)
        su, tu, sl, unstable = relu_relaxation(lo, up)
        if alpha is not None:
            sl = torch.where(unstable.unsqueeze(1), alpha[k], sl.unsqueeze(1))
        else:
            sl = sl.unsqueeze(1)
        lam_pos, lam_neg = lam.clamp(min=0.0), lam.clamp(max=0.0)
        const = const + (lam_neg @ tu.unsqueeze(-1)).squeeze(-1)
        if scores is not None:
            # What the upper line's intercept costs the bound (BaBSR), unsplit unstable only.
            sc = (-lam_neg * tu.unsqueeze(1)).sum(1)
            free = unstable if s is None else unstable & (s == 0)
            scores.insert(0, torch.where(free, sc + 1e-9, -torch.ones_like(sc)))
        lam_z = lam_pos * sl + lam_neg * su.unsqueeze(1)
        if beta is not None and s is not None:
            lam_z = lam_z - beta[k] * s.unsqueeze(1)
        const = const + lam_z @ b[k]
        lam = _times_map(lam_z, w[k])
    return lam, const, scores


def _rows(x: torch.Tensor) -> torch.Tensor:
    """A per-input vector (n,) or per-batch (B, n) shaped to broadcast against (B, R, n)."""
    return x if x.dim() == 1 else x.unsqueeze(-2)


def concretize_box(
    lam: torch.Tensor, const: torch.Tensor, x_lo: torch.Tensor, x_hi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``min lam . x + const`` over the box(es) ``[x_lo, x_hi]``, and the minimizers.

    The value is ``lam+ . x_lo + lam- . x_hi``: at ``lam_i = 0`` its gradient in ``lam_i`` is
    ``x_lo + x_hi`` (both clamps pass it), which the regularizers' training depends on."""
    x_star = torch.where(lam > 0, _rows(x_lo), _rows(x_hi))
    pos, neg = lam.clamp(min=0.0), lam.clamp(max=0.0)
    if x_lo.dim() == 1:  # one box for the whole batch
        value = pos @ x_lo + neg @ x_hi
    else:
        value = (pos @ x_lo.unsqueeze(-1) + neg @ x_hi.unsqueeze(-1)).squeeze(-1)
    return const + value, x_star


def concretize_l1(
    lam: torch.Tensor,
    const: torch.Tensor,
    x_lo: torch.Tensor,
    x_hi: torch.Tensor,
    l1: tuple[torch.Tensor, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``min lam . x + const`` over the box and ``||x - center||_1 <= eps``: from the
    center, spend the budget on the coordinates with the largest ``|lam|`` first, each up to its
    room to the box face (the fractional knapsack), and the minimizing inputs."""
    center, eps = l1
    gain = lam.abs()
    room = torch.where(lam > 0, _rows(center) - _rows(x_lo), _rows(x_hi) - _rows(center))
    room = room.clamp(min=0.0)
    order = torch.argsort(gain, dim=-1, descending=True)
    g, r = gain.gather(-1, order), room.gather(-1, order)
    before = r.cumsum(-1) - r  # room already taken by better coordinates
    take = torch.minimum((eps - before).clamp(min=0.0), r)
    lb = const + (lam * _rows(center)).sum(-1) - (g * take).sum(-1)
    step = torch.zeros_like(lam).scatter(-1, order, take)
    return lb, _rows(center) - torch.sign(lam) * step


def relaxed_backward(
    w: Sequence[torch.Tensor],
    b: Sequence[torch.Tensor],
    lam: torch.Tensor,
    const: torch.Tensor,
    x_lo: torch.Tensor,
    x_hi: torch.Tensor,
    lower: Sequence[torch.Tensor],
    upper: Sequence[torch.Tensor],
    splits: Sequence[torch.Tensor] | None = None,
    alpha: Sequence[torch.Tensor] | None = None,
    beta: Sequence[torch.Tensor] | None = None,
    l1: tuple[torch.Tensor, float] | None = None,
    want_scores: bool = False,
    relu: Sequence[bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
    """Lower bound of ``lam @ h + const`` over the box ``[x_lo, x_hi]`` (cut by the L1 ball
    ``l1 = (center, eps)`` if given): ``backward`` then concretization. Returns the bounds
    (B, R), the inputs that attain them (B, R, n_in) and the split scores if asked."""
    lam, const, scores = backward(
        w, b, lam, const, lower, upper, relu, splits, alpha, beta, want_scores
    )
    if l1 is not None:
        return (*concretize_l1(lam, const, x_lo, x_hi, l1), scores)
    return (*concretize_box(lam, const, x_lo, x_hi), scores)


# Largest backward row block (entries of lam): CROWN's memory stays bounded on wide conv layers.
CROWN_ENTRIES = 2.5e7


def crown_layers(
    w: Sequence[torch.Tensor],
    b: Sequence[torch.Tensor],
    relu: Sequence[bool],
    concretize: Concretizer,
    batch: int = 1,
    widen: bool = False,
    start: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    groups: Sequence[MaxGroups | None] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """CROWN bounds (lo, hi), each (batch, n_k), of every layer's pre-activation, layer by
    layer: the rows ``[W_k; -W_k]`` walked back through the layers before (relaxed on their
    bounds so far), concretized by ``concretize`` (lam (B, R, n_in), const (B, R)) -> lower
    bounds (B, R), then intersected with the interval image of the previous layer's bounds and
    with ``start[k]`` if given. ``widen`` rounds each step outward (proofs). Differentiable."""
    lowers: list[torch.Tensor] = []
    uppers: list[torch.Tensor] = []
    for k in range(len(w)):
        lo, hi = _crown_rows(w, b, relu, k, lowers, uppers, concretize, batch, groups)
        if widen and lo is not None:
            lo, hi = outward_t(lo, hi)
        if k:
            ilo, ihi = interval_image(
                w[k],
                b[k],
                *post_activation(
                    lowers[-1], uppers[-1], relu[k - 1], None if groups is None else groups[k - 1]
                ),
            )
            if widen:
                ilo, ihi = outward_t(ilo, ihi)
            lo = ilo if lo is None else torch.maximum(lo, ilo)
            hi = ihi if hi is None else torch.minimum(hi, ihi)
        if start is not None:
            lo, hi = torch.maximum(lo, start[k][0]), torch.minimum(hi, start[k][1])
        lowers.append(lo)
        uppers.append(hi)
    return list(zip(lowers, uppers, strict=True))


def _crown_rows(
    w: Sequence[torch.Tensor],
    b: Sequence[torch.Tensor],
    relu: Sequence[bool],
    k: int,
    lowers: Sequence[torch.Tensor],
    upper: Sequence[torch.Tensor],
    concretize: Concretizer,
    batch: int,
    groups: Sequence[MaxGroups | None] | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """CROWN bounds (batch, m) of layer k's pre-activations from bounds on the layers before,
    in row blocks of bounded memory; ``(None, None)`` when the layer only selects units of the
    one before (its interval image is as tight, and costs no (m x n) rows)."""
    m = w[k].shape[0]
    if k and _is_selection(w[k]):
        return None, None
    width = max(int(v.shape[0]) for v in w[: k + 1])
    step = max(1, int(CROWN_ENTRIES // (2 * batch * max(width, w[0].shape[1]))))
    los, his = [], []
    g = None if groups is None else groups[:k]
    for r0 in range(0, m, step):
        rows = torch.arange(r0, min(m, r0 + step))
        wk, bk = dense_rows(w[k], rows), b[k][rows]
        lam = torch.cat([wk, -wk]).expand(batch, -1, -1)
        const = torch.cat([bk, -bk]).expand(batch, -1)
        lam, const, _ = backward(w[:k], b[:k], lam, const, lowers, upper, relu[:k], groups=g)
        lb = concretize(lam, const)[0]
        los.append(lb[:, : rows.numel()])
        his.append(-lb[:, rows.numel() :])
    return torch.cat(los, dim=1), torch.cat(his, dim=1)


def _is_selection(w: torch.Tensor) -> bool:
    """Whether every row of the map has at most one nonzero (a copy or scaling of one unit)."""
    if w.layout == torch.strided:
        return bool(((w != 0).sum(dim=1) <= 1).all())
    rows = w.coalesce().indices()[0]
    return bool(torch.bincount(rows, minlength=w.shape[0]).max() <= 1) if rows.numel() else True


def region_concretizer(region: InputRegion, dtype: torch.dtype = torch.float64) -> Concretizer:
    """The tightest concretization over ``region``: the box, and for an L1 ball also the exact
    knapsack, the better of the two per row (float64 for proofs)."""
    x_lo = torch.from_numpy(region.lower).to(dtype)
    x_hi = torch.from_numpy(region.upper).to(dtype)
    l1 = _l1_of(region)
    if l1 is None:
        return partial(concretize_box, x_lo=x_lo, x_hi=x_hi)
    l1 = (l1[0].to(dtype), l1[1])

    def both(lam: torch.Tensor, const: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        box, xb = concretize_box(lam, const, x_lo, x_hi)
        ball, xl = concretize_l1(lam, const, x_lo, x_hi, l1)
        return torch.maximum(box, ball), torch.where((ball >= box).unsqueeze(-1), xl, xb)

    return both


def crown_bounds(
    network: Network, region: InputRegion, prior: NetworkBounds | None = None
) -> NetworkBounds:
    """CROWN bounds in float64, rounded outward, never looser than interval bounds (nor than
    ``prior`` if given): the "symbolic" bound method."""
    check_region(network, region)
    base = prior if prior is not None else interval_bounds(network, region)
    w, b, relu = layer_tensors(network)
    start = [
        (torch.from_numpy(lo).unsqueeze(0), torch.from_numpy(hi).unsqueeze(0))
        for lo, hi in zip(base.lower, base.upper, strict=True)
    ]
    with torch.no_grad(), torch_threads(PROOF_THREADS):
        out = crown_layers(
            w,
            b,
            relu,
            region_concretizer(region),
            widen=True,
            start=start,
            groups=[layer.groups for layer in network.layers],
        )
    return NetworkBounds(
        [lo[0].numpy() for lo, _ in out], [hi[0].numpy() for _, hi in out], "symbolic"
    )


def tighten_layer(
    network: Network,
    region: InputRegion,
    lowers: Sequence[np.ndarray],
    uppers: Sequence[np.ndarray],
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """CROWN bounds of layer k's pre-activation given sound bounds on layers ``0..k-1``,
    intersected with the interval image of layer k-1's bounds, rounded outward (float64).
    Used to re-tighten one layer after earlier ones improved (LP tightening, output specs)."""
    w, b, relu = layer_tensors(network)
    groups = [layer.groups for layer in network.layers]
    lo_t = [torch.from_numpy(np.asarray(v, np.float64)).unsqueeze(0) for v in lowers[:k]]
    up_t = [torch.from_numpy(np.asarray(v, np.float64)).unsqueeze(0) for v in uppers[:k]]
    with torch.no_grad(), torch_threads(PROOF_THREADS):
        lo, hi = _crown_rows(
            w, b, relu, k, lo_t, up_t, region_concretizer(region), 1, groups[: k + 1]
        )
        if lo is not None:
            lo, hi = outward_t(lo[0], hi[0])
        if k:
            plo, phi = post_activation(lo_t[-1][0], up_t[-1][0], relu[k - 1], groups[k - 1])
            ilo, ihi = outward_t(*interval_image(w[k], b[k], plo, phi))
            lo = ilo if lo is None else torch.maximum(lo, ilo)
            hi = ihi if hi is None else torch.minimum(hi, ihi)
    return lo.numpy(), hi.numpy()


# ----------------------------------------------------------------------------- alpha-CROWN


class Adam:
    """Adam ascent steps, by hand: ``torch.optim`` pulls in the compiler stack on first use,
    seconds of import inside a verifier's time budget."""

    def __init__(self, params: list[torch.Tensor], b1: float = 0.9, b2: float = 0.999) -> None:
        self.params, self.b1, self.b2, self.t = params, b1, b2, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def ascend(self, grads: tuple[torch.Tensor, ...], lrs: list[float]) -> None:
        self.t += 1
        c1, c2 = 1.0 - self.b1**self.t, 1.0 - self.b2**self.t
        for p, g, m, v, lr in zip(self.params, grads, self.m, self.v, lrs, strict=True):
            m.mul_(self.b1).add_(g, alpha=1.0 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1.0 - self.b2)
            p.add_(lr * (m / c1) / ((v / c2).sqrt() + 1e-8))


def alpha_fits(network: Network) -> bool:
    """True for the networks alpha-CROWN and branch and bound handle: ReLU hidden layers and an
    affine output."""
    layers = network.layers
    return (
        len(layers) > 1
        and not layers[-1].relu
        and layers[-1].groups is None
        and all(lay.relu for lay in layers[:-1])
    )


def alpha_bounds(
    network: Network,
    region: InputRegion,
    start: NetworkBounds | None = None,
    iters: int = ALPHA_ITERS,
    time_budget: float | None = None,
) -> NetworkBounds:
    """Alpha-CROWN bounds, layer by layer, intersected with ``start`` (default: CROWN).

    Layer by layer, the neurons unstable under the bounds so far get lower bounds for ``z`` and
    ``-z`` with their own lower slopes per row, tuned by Adam; every evaluated bound is valid,
    so the best one seen per row is kept. The output layer is tightened too. Past
    ``time_budget`` seconds the remaining layers keep ``start``'s bounds. Networks other than a
    ReLU MLP get ``start``.
    """
    check_region(network, region)
    base = start if start is not None else crown_bounds(network, region)
    if not alpha_fits(network):
        return base
    deadline = None if time_budget is None else time.perf_counter() + time_budget
    lowers = [lo.copy() for lo in base.lower]
    uppers = [hi.copy() for hi in base.upper]
    x_lo, x_hi = torch.from_numpy(region.lower), torch.from_numpy(region.upper)
    l1 = _l1_of(region)
    w, b, _ = layer_tensors(network)
    for j in range(1, len(network.layers)):
        if deadline is not None and time.perf_counter() > deadline:
            break
        last = j == len(network.layers) - 1
        rows = np.flatnonzero(
            np.ones_like(lowers[j], bool) if last else (lowers[j] < 0.0) & (uppers[j] > 0.0)
        )
        if rows.size == 0:
            continue
        lo_t = [torch.from_numpy(v).unsqueeze(0) for v in lowers[:j]]
        up_t = [torch.from_numpy(v).unsqueeze(0) for v in uppers[:j]]
        wr = dense_rows(w[j], torch.from_numpy(rows))
        lam = torch.cat([wr, -wr]).unsqueeze(0)
        br = b[j][torch.from_numpy(rows)]
        const = torch.cat([br, -br]).unsqueeze(0)
        bound = partial(relaxed_backward, w[:j], b[:j], lam, const, x_lo, x_hi, lo_t, up_t, l1=l1)
        best = _optimize_rows(bound, lo_t, up_t, lam.shape[1], iters, deadline)
        m = rows.size
        lo, hi = outward_t(torch.from_numpy(best[:m]), torch.from_numpy(-best[m:]))
        lowers[j][rows] = np.maximum(lowers[j][rows], lo.numpy())
        uppers[j][rows] = np.minimum(uppers[j][rows], hi.numpy())
    return NetworkBounds(lowers, uppers, "alpha")


def _optimize_rows(
    bound: Callable[..., tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]],
    lower: list[torch.Tensor],
    upper: list[torch.Tensor],
    n_rows: int,
    iters: int,
    deadline: float | None,
) -> np.ndarray:
    """Best lower bound per row over ``iters`` Adam steps on the rows' own lower slopes, started
    from CROWN's choice under ``lower``/``upper``, as a numpy array (R,). ``bound(alpha=...)``
    is ``relaxed_backward`` with everything else fixed (rows of shape (1, R))."""
    alpha = [
        (up >= -lo).to(torch.float64).unsqueeze(1).expand(-1, n_rows, -1).clone()
        for lo, up in zip(lower, upper, strict=True)
    ]
    for a in alpha:
        a.requires_grad_(True)
    adam = Adam(alpha)
    best = None
    for it in range(iters + 1):
        final = it == iters or (deadline is not None and time.perf_counter() > deadline)
        with torch.set_grad_enabled(not final):
            lb = bound(alpha=alpha)[0]
        best = lb.detach() if best is None else torch.maximum(best, lb.detach())
        if final:
            break
        grads = torch.autograd.grad(lb.sum(), alpha)
        with torch.no_grad():  # projected back onto [0, 1]
            adam.ascend(grads, [ALPHA_LR] * len(alpha))
            for a in alpha:
                a.clamp_(0.0, 1.0)
    assert best is not None
    return best[0].numpy()
