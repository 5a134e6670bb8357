"""Branch and bound over ReLU splits with optimized linear bounds (alpha-beta-CROWN style).

The question is the verifier's: over an input box, is ``max_i (C_i y(x) - d_i) > 0`` for every
disjunct? A *domain* is the box plus a sign for some unstable ReLUs (``z >= 0`` active or
``z <= 0`` inactive). Each domain gets a lower bound per spec row by one backward pass of
linear relaxations (CROWN), where

* an unstable ReLU's lower line ``h >= alpha z`` has its own ``alpha`` in [0, 1] per domain,
  spec row and neuron (Xu et al., alpha-CROWN), and
* each split ``s z >= 0`` enters through a Lagrange multiplier ``beta >= 0`` (Wang et al.,
  beta-CROWN): ``min f`` over the split domain is at least ``min f - beta s z`` over the box;

``alpha`` and ``beta`` are tuned by projected gradient ascent on the bound. Every evaluation
with projected parameters is itself a valid bound, so the best one seen per row is kept.
Intermediate (pre-activation) bounds are the root's, given by the caller (sound for every
sub-domain) and clamped at split neurons. Domains whose every disjunct is proven are dropped;
the rest are split, worst bound first, on the neuron that does most for the children's bounds
among the best few by BaBSR's intercept score (filtered smart branching); on nets of 3 hidden
layers or more, among the best of each layer, judged with the children's intermediate bounds
re-tightened, so that a split's effect on the later layers counts. Each bounded domain also
offers the input that minimizes its linear bound as a counterexample candidate, re-checked by
the caller.

The search runs in ``dtype`` (float32 by default: twice the domains per second on a CPU). A
float32 bound is not a proof, so every bound that would prove a disjunct is recomputed in
float64 with the same splits, intermediate bounds and the alpha/beta that gave it, and only that
float64 value counts; a disjunct counts as proven when it exceeds ``tol``. Intermediate bounds
are kept and re-tightened in float64.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from nn2mip.bounds_base import NetworkBounds
from nn2mip.crown import Adam, dense_rows, layer_tensors, relaxed_backward
from nn2mip.crown import alpha_fits as bab_fits
from nn2mip.highs_backend import solve_highs
from nn2mip.mip import MipModel
from nn2mip.network import Network
from nn2mip.vnnlib import OutputConstraint

# Adam steps on alpha/beta for the root and for each batch of sub-domains.
ROOT_ITERS = 60
DOMAIN_ITERS = 12
LR_ALPHA = 0.1
LR_BETA = 0.05
# Domains bounded together (children of BATCH // 2 parents).
BATCH = 128
# Stop with "unknown" rather than exhaust memory.
MAX_DOMAINS = 40_000
# Candidates per domain for filtered smart branching, spread over the hidden layers (at least
# one per layer).
FSB_K = 4
# From this many hidden layers on, the candidates come from every layer and are judged with
# re-tightened intermediate bounds (see ``_choose_splits``). On 2-layer nets the global top
# candidates without re-tightening decide the same instances 2.5-5x faster (seed 2x100, L1).
# Not a rule for every deep net: on a 5-10-10-10-3 toy net (tests) it takes 12x more domains.
DEEP_BRANCHING_LAYERS = 3


@dataclass
class BabResult:
    """``proven[k]``: disjunct k has a bound above ``tol`` on every domain; ``candidates``: inputs
    whose linear bound was lowest (for the caller to re-check); ``status`` is ``"unsat"`` (all
    proven), ``"candidate"`` (the caller's check accepted a candidate), ``"timeout"`` or
    ``"unknown"`` (domain cap)."""

    status: str
    proven: list[bool]
    # unsat: the smallest proven disjunct bound (> tol); otherwise the min over open domains and
    # open disjuncts of the best row bound
    lower_bound: float
    domains: int = 0  # domains bounded, root included
    max_depth: int = 0
    time: float = 0.0
    x: np.ndarray | None = None
    history: list[tuple[float, int, float]] = field(default_factory=list)  # (t, queue, lb)


@dataclass
class _Domain:
    lb: torch.Tensor  # (R,) best row bounds (float64; certified where a disjunct is closed)
    open_dj: torch.Tensor  # (K,) bool: disjuncts not yet proven here
    splits: torch.Tensor  # int8 (N,) over all hidden neurons, in {-1, 0, +1}
    alpha: list[torch.Tensor]  # per hidden layer, float16 (R, n_k)
    beta: list[torch.Tensor]  # per hidden layer, float16 (R, n_k)
    branch: torch.Tensor  # (N,) split scores, <= 0 where a split is impossible
    lower: torch.Tensor  # (N,) float64 pre-activation bounds valid on this domain
    upper: torch.Tensor
    depth: int


class _Spec:
    """The network with the spec rows folded into its last layer, as ``dtype`` tensors."""

    def __init__(
        self,
        network: Network,
        disjuncts: tuple[OutputConstraint, ...],
        bounds: NetworkBounds,
        l1: tuple[np.ndarray, float] | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        layers = network.layers
        self.dtype = dtype
        # An L1 ball (center, radius) intersected with the box, or the box alone.
        self.l1 = None if l1 is None else (torch.tensor(np.asarray(l1[0]), dtype=dtype), l1[1])
        if not bab_fits(network):
            raise ValueError("branch and bound needs ReLU hidden layers and an affine output")
        rows_c = [dj.C for dj in disjuncts]
        rows_d = [dj.d for dj in disjuncts]
        self.row_dj = torch.tensor(
            [k for k, dj in enumerate(disjuncts) for _ in range(dj.C.shape[0])], dtype=torch.long
        )
        c = np.concatenate(rows_c, axis=0)
        d = np.concatenate(rows_d)
        last = layers[-1]
        # Hidden maps dense or sparse (lowered convolutions), as CROWN takes them.
        ws, bs, _ = layer_tensors(Network(layers[:-1]), dtype)
        self.w, self.b = ws, bs
        self.w_spec = torch.tensor(np.asarray((last.csr.T @ c.T).T), dtype=dtype)
        self.b_spec = torch.tensor(c @ last.bias - d, dtype=dtype)
        # The root's pre-activation bounds stay float64: they are the certificates' too.
        self.lower = [torch.from_numpy(np.asarray(v, np.float64)) for v in bounds.lower[:-1]]
        self.upper = [torch.from_numpy(np.asarray(v, np.float64)) for v in bounds.upper[:-1]]
        self.unstable_rows = [
            torch.nonzero((lo < 0) & (u > 0)).flatten()
            for lo, u in zip(self.lower, self.upper, strict=True)
        ]
        self.n_dj = len(disjuncts)
        self.n_rows = int(self.w_spec.shape[0])

    def initial_alpha(self) -> list[torch.Tensor]:
        """CROWN's adaptive lower slope, 1 where ``u >= -l``, per row."""
        return [
            (u >= -lo).to(self.dtype).expand(self.n_rows, -1).clone()
            for lo, u in zip(self.lower, self.upper, strict=True)
        ]

    def bound(
        self,
        x_lo: torch.Tensor,
        x_hi: torch.Tensor,
        splits: list[torch.Tensor],
        lower: list[torch.Tensor],
        upper: list[torch.Tensor],
        alpha: list[torch.Tensor],
        beta: list[torch.Tensor],
        want_scores: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
        """Row lower bounds (B, R), the minimizing inputs (B, R, n) and, if asked, split scores.

        ``splits[k]`` (B, n_k) int8; ``lower[k]``, ``upper[k]`` (B, n_k) pre-activation bounds
        valid on each domain; ``alpha[k]``, ``beta[k]`` (B, R, n_k), already projected.
        """
        nb = splits[0].shape[0]
        lam = self.w_spec.expand(nb, -1, -1)  # coefficient on h_{L-2}
        const = self.b_spec.expand(nb, -1)
        lower, upper = self._cast(lower), self._cast(upper)
        x_lo, x_hi = x_lo.to(self.dtype), x_hi.to(self.dtype)
        return self._backward(
            lam, const, len(self.w), x_lo, x_hi, splits, lower, upper, alpha, beta, want_scores
        )

    def _cast(self, ts: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t.to(self.dtype) for t in ts]

    def refine(
        self,
        x_lo: torch.Tensor,
        x_hi: torch.Tensor,
        splits: list[torch.Tensor],
        lower: list[torch.Tensor],
        upper: list[torch.Tensor],
        start: int = 1,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Re-tighten the pre-activation bounds of layers ``start``.. in each domain by CROWN,
        layer by layer, using the split-clamped bounds of the layers before (beta-CROWN's
        intermediate bounds, without beta). Only neurons still unsplit and unstable in some
        domain of the batch are recomputed: a stable neuron's bounds enter no relaxation. A
        layer up to the shallowest new split is skipped: nothing before it changed since the
        parent's bounds were computed."""
        lower, upper = list(lower), list(upper)
        for j in range(max(start, 1), len(self.w)):
            open_ = (splits[j] == 0) & (lower[j] < 0.0) & (upper[j] > 0.0)
            rows = torch.nonzero(open_.any(dim=0)).flatten()
            if rows.numel() == 0:
                continue
            w = dense_rows(self.w[j], rows)
            lam = torch.cat([w, -w]).expand(splits[0].shape[0], -1, -1)
            const = torch.cat([self.b[j][rows], -self.b[j][rows]]).expand(lam.shape[0], -1)
            with torch.no_grad():
                lb = self._backward(lam, const, j, x_lo, x_hi, splits, lower, upper)[0]
            m = rows.numel()
            lo, up = lower[j].clone(), upper[j].clone()
            lo[:, rows] = torch.maximum(lo[:, rows], lb[:, :m])
            up[:, rows] = torch.minimum(up[:, rows], -lb[:, m:])
            lower[j], upper[j] = lo, up
        return lower, upper

    def _backward(
        self,
        lam: torch.Tensor,
        const: torch.Tensor,
        top: int,
        x_lo: torch.Tensor,
        x_hi: torch.Tensor,
        splits: list[torch.Tensor],
        lower: list[torch.Tensor],
        upper: list[torch.Tensor],
        alpha: list[torch.Tensor] | None = None,
        beta: list[torch.Tensor] | None = None,
        want_scores: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
        """Lower bound of ``lam @ h_{top-1} + const`` (lam (B, R, n)) back through hidden layers
        ``top-1 .. 0`` to the input region; without alpha, CROWN's adaptive lower slopes."""
        return relaxed_backward(
            self.w[:top],
            self.b[:top],
            lam,
            const,
            x_lo,
            x_hi,
            lower[:top],
            upper[:top],
            splits=splits[:top],
            alpha=None if alpha is None else alpha[:top],
            beta=None if beta is None else beta[:top],
            l1=self.l1,
            want_scores=want_scores,
        )


def bab_verify(
    network: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    disjuncts: tuple[OutputConstraint, ...],
    bounds: NetworkBounds,
    deadline: float,
    accept: Callable[[np.ndarray], bool] | None = None,
    tol: float = 1e-6,
    batch: int = BATCH,
    max_domains: int = MAX_DOMAINS,
    fsb_k: int = FSB_K,
    refine: bool = True,
    l1: tuple[np.ndarray, float] | None = None,
    dtype: torch.dtype = torch.float32,
) -> BabResult:
    """Prove every disjunct (``max_i (C_i y - d_i) > tol`` on the box) by branch and bound.

    ``l1 = (center, eps)`` restricts the box to its intersection with that L1 ball.

    ``bounds`` must be sound pre-activation bounds over the box (the root's); ``deadline`` is a
    ``time.perf_counter()`` value; ``accept`` re-checks a candidate input (True: a real
    counterexample, the search stops with status ``"candidate"``). ``dtype`` is the search's
    precision; proofs are always float64.
    """
    t0 = time.perf_counter()
    spec = _Spec(network, disjuncts, bounds, l1, dtype)
    spec64 = spec if dtype == torch.float64 else _Spec(network, disjuncts, bounds, l1)
    x_lo = torch.from_numpy(np.asarray(lower, np.float64))
    x_hi = torch.from_numpy(np.asarray(upper, np.float64))
    n_layers = len(spec.w)
    res = BabResult("timeout", [False] * spec.n_dj, -np.inf)

    def per_disjunct(lb: torch.Tensor) -> torch.Tensor:
        """(B, K): each disjunct's best row bound (a disjunct holds if any of its rows does)."""
        out = torch.full((lb.shape[0], spec.n_dj), -torch.inf, dtype=lb.dtype)
        return out.scatter_reduce(1, spec.row_dj.expand(lb.shape[0], -1), lb, "amax")

    def proven_dj(lb: torch.Tensor) -> torch.Tensor:
        """(B, K) bool: disjunct proven (its best row bound above tol)."""
        return per_disjunct(lb) > tol

    def optimize(splits, lower, upper, alpha, beta, dj_open, iters):
        """Tune alpha/beta; returns the float64-certified best lb (B, R), the params that gave
        it and the final x*/scores (scores None when every open disjunct got proven on the way).
        """
        open_rows = dj_open[:, spec.row_dj].to(dtype)
        alpha = [a.detach().to(dtype).requires_grad_(True) for a in alpha]
        beta = [b.detach().to(dtype).requires_grad_(True) for b in beta]
        params = alpha + beta
        lrs = [LR_ALPHA] * len(alpha) + [LR_BETA] * len(beta)
        adam = Adam(params)
        best = None
        # Per (domain, row), the params of its best bound: the certificate recomputes it.
        keep_a = [a.detach().clone() for a in alpha]
        keep_b = [b.detach().clone() for b in beta]
        for it in range(iters + 1):
            last = it == iters or time.perf_counter() > deadline
            with torch.set_grad_enabled(not last):
                lb, x_star, scores = spec.bound(
                    x_lo, x_hi, splits, lower, upper, alpha, beta, want_scores=last
                )
            if best is None:
                best = lb.detach()
            else:
                better = (lb.detach() > best).unsqueeze(-1)
                best = torch.maximum(best, lb.detach())
                for kept, cur in zip(keep_a + keep_b, alpha + beta, strict=True):
                    torch.where(better, cur.detach(), kept, out=kept)
            if last:
                break
            if not bool((dj_open & ~proven_dj(best)).any()):  # all proven: stop tuning
                sure = certify(best, splits, lower, upper, keep_a, keep_b, dj_open)
                if not bool((dj_open & ~proven_dj(sure)).any()):
                    return sure, keep_a, keep_b, x_star.detach(), None
                # else only float32 rounding proved it: tune on, to split scores at the end
            # Rows already above tol need no more work; cap their pull on the step.
            gain = (lb.clamp(max=tol * 10) * open_rows).sum()
            grads = torch.autograd.grad(gain, params)
            with torch.no_grad():
                adam.ascend(grads, lrs)
                for a in alpha:
                    a.clamp_(0.0, 1.0)
                for b in beta:
                    b.clamp_(min=0.0)
        best = certify(best, splits, lower, upper, keep_a, keep_b, dj_open)
        return best, keep_a, keep_b, x_star, scores

    def certify(lb, splits, lower, upper, alpha, beta, dj_open):
        """``lb`` as float64, recomputed in float64 on the domains where it proves a disjunct
        still open (the search's float32 value is no proof)."""
        lb = lb.double()
        if spec64 is spec:
            return lb
        redo = torch.nonzero((dj_open & proven_dj(lb)).any(dim=1)).flatten()
        if redo.numel():
            with torch.no_grad():
                lb[redo] = spec64.bound(
                    x_lo,
                    x_hi,
                    [t[redo] for t in splits],
                    [t[redo].double() for t in lower],
                    [t[redo].double() for t in upper],
                    [t[redo].double() for t in alpha],
                    [t[redo].double() for t in beta],
                )[0]
        return lb

    def try_candidates(lb: torch.Tensor, x_star: torch.Tensor) -> np.ndarray | None:
        if accept is None:
            return None
        worst = lb.argmin(dim=1)
        xs = x_star[torch.arange(len(worst)), worst].double().numpy()
        for x in xs[np.argsort(lb.min(dim=1).values.numpy())][:8]:
            x = np.clip(x, lower, upper)  # a float32 search may round past the box
            if accept(x):
                return x
        return None

    def finish(status: str, queue: list) -> BabResult:
        res.status, res.time = status, time.perf_counter() - t0
        if status == "unsat":
            res.proven = [True] * spec.n_dj
            res.lower_bound = closed[0]
        elif status == "candidate":  # the search stopped early: nothing more is known
            res.proven = [False] * spec.n_dj
        else:
            still_open = torch.zeros(spec.n_dj, dtype=torch.bool)
            for _, _, dom in queue:
                still_open |= dom.open_dj
            res.proven = [not bool(v) for v in still_open]
            if queue:
                res.lower_bound = float(min(item[0] for item in queue))
        return res

    sizes = [len(lo) for lo in spec.lower]
    offsets = torch.tensor(sizes).cumsum(0)  # flat neuron index -> layer via searchsorted

    def layered(flat: torch.Tensor) -> list[torch.Tensor]:
        return list(flat.split(sizes, dim=1))

    def values(lb: torch.Tensor, open_dj: torch.Tensor) -> torch.Tensor:
        """(B,) the worst open disjunct's best row bound (+inf when none is open)."""
        return torch.where(open_dj, per_disjunct(lb), torch.inf).min(dim=1).values

    # Root.
    n_all = sum(sizes)
    alpha0 = [a.unsqueeze(0) for a in spec.initial_alpha()]
    beta0 = [torch.zeros_like(a) for a in alpha0]
    splits0 = torch.zeros(1, n_all, dtype=torch.int8)
    lower0 = torch.cat(spec.lower).unsqueeze(0)
    upper0 = torch.cat(spec.upper).unsqueeze(0)
    lb, alpha0, beta0, x_star, scores = optimize(
        layered(splits0),
        layered(lower0),
        layered(upper0),
        alpha0,
        beta0,
        torch.ones(1, spec.n_dj, dtype=torch.bool),
        ROOT_ITERS,
    )
    res.domains = 1
    x = try_candidates(lb, x_star)
    if x is not None:
        res.x = x
        return finish("candidate", [])
    open_dj = ~proven_dj(lb)[0]
    # The smallest bound of a disjunct proven on a domain that was then dropped: with every
    # disjunct proven everywhere, a lower bound of the whole question.
    closed = [float(values(lb, proven_dj(lb))[0])]
    if not bool(open_dj.any()):
        return finish("unsat", [])
    counter = itertools.count()
    root = _Domain(
        lb[0],
        open_dj,
        splits0[0],
        [a[0].half() for a in alpha0],
        [b[0].half() for b in beta0],
        torch.cat(scores, dim=1)[0].float(),
        lower0[0],
        upper0[0],
        0,
    )
    queue: list[tuple[float, int, _Domain]] = [(_score(root, values), next(counter), root)]

    last_start, last_n = 0.0, 0  # when the last step began and how many parents it took
    while queue:
        now = time.perf_counter()
        if now > deadline:
            return finish("timeout", queue)
        if len(queue) > max_domains:
            return finish("unknown", queue)
        n = min(batch // 2, len(queue))
        if last_n:  # on wide nets a full step can take minutes: fit it to the time left
            per_parent = max((now - last_start) / last_n, 1e-9)
            n = max(1, min(n, int((deadline - now) / per_parent)))
        parents = [heapq.heappop(queue)[2] for _ in range(n)]
        last_start, last_n = now, n
        choice = _choose_splits(spec, parents, x_lo, x_hi, layered, values, fsb_k, offsets, refine)
        if time.perf_counter() > deadline:  # one choice can take seconds on wide nets
            return finish("timeout", _requeue(queue, parents, values, counter))
        # A domain with no unstable ReLU left is one LP: solve it exactly.
        for i in torch.nonzero(choice < 0).flatten().tolist():
            p = parents[i]
            proven, x = _leaf_lp(spec64, x_lo.numpy(), x_hi.numpy(), p, tol)
            res.domains += 1
            if x is not None and accept is not None and accept(x):
                res.x = x
                return finish("candidate", queue)
            if bool((p.open_dj & ~proven).any()):  # nothing left to split: give up here
                # Back in the queue, so that none counts as proven.
                return finish("unknown", _requeue(queue, parents, values, counter))
        parents = [p for p, c in zip(parents, choice.tolist(), strict=True) if c >= 0]
        choice = choice[choice >= 0]
        if not parents:
            continue
        rows = torch.arange(len(parents)).repeat_interleave(2)
        splits = torch.stack([p.splits for p in parents])[rows]
        signs = torch.tensor([1, -1], dtype=torch.int8).repeat(len(parents))
        splits[torch.arange(len(rows)), choice[rows]] = signs
        alpha = [torch.stack([p.alpha[k] for p in parents])[rows] for k in range(n_layers)]
        beta = [torch.stack([p.beta[k] for p in parents])[rows] for k in range(n_layers)]
        parent_lb = torch.stack([p.lb for p in parents])[rows]
        dj_open = torch.stack([p.open_dj for p in parents])[rows]
        lo_l = layered(torch.stack([p.lower for p in parents])[rows])
        up_l = layered(torch.stack([p.upper for p in parents])[rows])
        if refine:  # float64: these bounds go into the certificates
            lo_l, up_l = _refine_by_layer(
                spec64, x_lo, x_hi, layered(splits), lo_l, up_l, choice[rows], offsets
            )
            if time.perf_counter() > deadline:
                return finish("timeout", _requeue(queue, parents, values, counter))
        lb, alpha, beta, x_star, scores = optimize(
            layered(splits), lo_l, up_l, alpha, beta, dj_open, DOMAIN_ITERS
        )
        dom_lo, dom_up = torch.cat(lo_l, dim=1), torch.cat(up_l, dim=1)
        # Children inherit their parent's bound: the better one holds.
        lb = torch.maximum(lb, parent_lb)
        res.domains += len(rows)
        x = try_candidates(lb, x_star)
        if x is not None:
            res.x = x
            return finish("candidate", queue)
        still = dj_open & ~proven_dj(lb)
        just = dj_open & ~still
        if bool(just.any()):
            closed[0] = min(closed[0], float(values(lb, just).min()))
        if scores is None:  # every child proven
            continue
        branch = torch.cat(scores, dim=1).float()
        for i in torch.nonzero(still.any(dim=1)).flatten().tolist():
            depth = parents[i // 2].depth + 1
            d = _Domain(
                lb[i],
                still[i],
                splits[i],
                [a[i].half() for a in alpha],
                [b[i].half() for b in beta],
                branch[i],
                dom_lo[i],
                dom_up[i],
                depth,
            )
            res.max_depth = max(res.max_depth, depth)
            heapq.heappush(queue, (_score(d, values), next(counter), d))
        res.history.append((time.perf_counter() - t0, len(queue), _queue_lb(queue)))
    return finish("unsat", queue)


def _requeue(
    queue: list[tuple[float, int, _Domain]],
    parents: list[_Domain],
    values: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    counter: Iterator[int],
) -> list[tuple[float, int, _Domain]]:
    """``queue`` with ``parents`` pushed back: a search stopped mid-step leaves them open."""
    for p in parents:
        heapq.heappush(queue, (_score(p, values), next(counter), p))
    return queue


def _choose_splits(
    spec: _Spec,
    parents: list[_Domain],
    x_lo: torch.Tensor,
    x_hi: torch.Tensor,
    layered: Callable[[torch.Tensor], list[torch.Tensor]],
    values: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    fsb_k: int,
    offsets: torch.Tensor,
    refine: bool,
) -> torch.Tensor:
    """Per parent, the neuron (flat index) to split; -1 where no unstable neuron is left.

    Candidates: the ``fsb_k`` best neurons by intercept score; of those, the one whose two
    children get the best worst-case bound with the parent's alpha/beta (filtered smart
    branching). On nets of ``DEEP_BRANCHING_LAYERS`` hidden layers or more, the candidates are
    the best of *each* hidden layer (``fsb_k`` in all, at least one per layer), and, with
    ``refine``, each child's later-layer intermediate bounds are re-tightened as the search
    will do before it is judged. That is what makes a split in an early layer worth its price:
    the intercept score only sees a neuron's own relaxation, so it favours the last layers; on
    VNN-COMP 256x4 prop_11_0.05 branching on those left the bound at -0.53 after 120 s, where
    this proves the property in 7-22 s.
    """
    branch = torch.stack([p.branch for p in parents])
    ends = offsets.tolist()
    deep = len(ends) >= DEEP_BRANCHING_LAYERS
    if deep:
        starts = [0, *ends[:-1]]
        per_layer = max(1, -(-fsb_k // len(ends)))  # ceil
        picks = [
            branch[:, a:b].topk(min(per_layer, b - a), dim=1)
            for a, b in zip(starts, ends, strict=True)
        ]
        top_v = torch.cat([v for v, _ in picks], dim=1)
        top_i = torch.cat([i + a for (_, i), a in zip(picks, starts, strict=True)], dim=1)
    else:
        top_v, top_i = branch.topk(min(fsb_k, branch.shape[1]), dim=1)
    refine = refine and deep
    k = top_v.shape[1]
    none_left = top_v.max(dim=1).values <= 0
    if k == 1:  # nothing to compare: BaBSR's pick
        return torch.where(none_left, -1, top_i[:, 0])
    n_p = len(parents)
    rows = torch.arange(n_p).repeat_interleave(2 * k)
    splits = torch.stack([p.splits for p in parents])[rows]
    cols = top_i.repeat_interleave(2, dim=1).reshape(-1)
    signs = torch.tensor([1, -1], dtype=torch.int8).repeat(n_p * k)
    splits[torch.arange(len(rows)), cols] = signs
    n_layers = len(parents[0].alpha)
    alpha = [
        torch.stack([p.alpha[j] for p in parents])[rows].to(spec.dtype) for j in range(n_layers)
    ]
    beta = [torch.stack([p.beta[j] for p in parents])[rows].to(spec.dtype) for j in range(n_layers)]
    with torch.no_grad():
        lo_l = spec._cast(layered(torch.stack([p.lower for p in parents])[rows]))
        up_l = spec._cast(layered(torch.stack([p.upper for p in parents])[rows]))
        if refine:  # in the search's precision: a choice needs no proof
            lo_l, up_l = _refine_by_layer(
                spec, x_lo, x_hi, layered(splits), lo_l, up_l, cols, offsets
            )
        lb = spec.bound(x_lo, x_hi, layered(splits), lo_l, up_l, alpha, beta)[0]
    lb = torch.maximum(lb.double(), torch.stack([p.lb for p in parents])[rows])
    dj_open = torch.stack([p.open_dj for p in parents])[rows]
    v = values(lb, dj_open).clamp(max=1e9).view(n_p, k, 2)
    score = v.min(dim=2).values + 1e-3 * v.max(dim=2).values
    score = torch.where(top_v > 0, score, -torch.inf)
    best = top_i[torch.arange(n_p), score.argmax(dim=1)]
    return torch.where(none_left, -1, best)


def _refine_by_layer(
    spec: _Spec,
    x_lo: torch.Tensor,
    x_hi: torch.Tensor,
    splits: list[torch.Tensor],
    lower: list[torch.Tensor],
    upper: list[torch.Tensor],
    split_at: torch.Tensor,
    offsets: torch.Tensor,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``spec.refine`` for each domain from the layer after its new split (``split_at``, flat
    neuron index per domain) on, grouping the domains by that layer."""
    layer_of = torch.searchsorted(offsets, split_at, right=True)
    lower, upper = [t.clone() for t in lower], [t.clone() for t in upper]
    x_lo, x_hi = x_lo.to(spec.dtype), x_hi.to(spec.dtype)
    for j in layer_of.unique().tolist():
        if j + 1 >= len(lower):
            continue  # a split in the last hidden layer changes no intermediate bound
        idx = torch.nonzero(layer_of == j).flatten()
        lo, up = spec.refine(
            x_lo,
            x_hi,
            [t[idx] for t in splits],
            [t[idx] for t in lower],
            [t[idx] for t in upper],
            j + 1,
        )
        for m in range(j + 1, len(lower)):
            lower[m][idx], upper[m][idx] = lo[m], up[m]
    return lower, upper


def _leaf_lp(
    spec: _Spec, x_lo: np.ndarray, x_hi: np.ndarray, d: _Domain, tol: float
) -> tuple[torch.Tensor, np.ndarray | None]:
    """Solve a domain whose ReLUs are all stable or split exactly: the network is affine there,
    so ``min max_i (C_i y - d_i)`` per open disjunct is an LP over the box and the split rows.
    Returns the disjuncts proven (value above ``tol``, or the domain empty) and the minimizer of
    the first disjunct whose minimum is <= 0, if any."""
    n_in = len(x_lo)
    a_h, c_h = np.eye(n_in), np.zeros(n_in)  # h = a_h x + c_h, from the input on
    split_a, split_c = [], []
    start = 0
    for k in range(len(spec.w)):
        w, b = spec.w[k].numpy(), spec.b[k].numpy()
        n = w.shape[0]
        s = d.splits[start : start + n].numpy().astype(np.float64)
        lo = d.lower[start : start + n].numpy()
        start += n
        za, zc = w @ a_h, w @ c_h + b
        on = s != 0
        split_a.append(s[on, None] * za[on])  # s z >= 0
        split_c.append(s[on] * zc[on])
        # Split neurons take their split's side; the others are stable by their bounds.
        active = np.where(on, s > 0, lo >= 0.0).astype(np.float64)
        a_h, c_h = za * active[:, None], zc * active
    ya = spec.w_spec.numpy() @ a_h
    yc = spec.w_spec.numpy() @ c_h + spec.b_spec.numpy()
    sa, sc = np.concatenate(split_a), np.concatenate(split_c)
    proven = torch.zeros(spec.n_dj, dtype=torch.bool)
    found = None
    for j in torch.nonzero(d.open_dj).flatten().tolist():
        rows = torch.nonzero(spec.row_dj == j).flatten().numpy()
        model = MipModel()
        x = model.add_cols(x_lo, x_hi)
        t = model.add_cols(-np.inf, np.inf, n=1)
        if spec.l1 is not None:  # u >= |x - center|, sum u <= eps
            center, eps = spec.l1[0].numpy(), spec.l1[1]
            u = model.add_cols(0.0, np.inf, n=n_in)
            idx = np.arange(n_in)
            both = np.concatenate([idx, idx])
            model.add_rows(
                both, np.concatenate([u, x]), [1.0] * n_in + [-1.0] * n_in, -center, np.inf, n=n_in
            )
            model.add_rows(both, np.concatenate([u, x]), [1.0] * n_in * 2, center, np.inf, n=n_in)
            model.add_rows(np.zeros(n_in), u, np.ones(n_in), -np.inf, eps, n=1)
        rr, cc = np.nonzero(sa)
        model.add_rows(rr, x[cc], sa[rr, cc], -sc, np.inf, n=len(sa))
        # t - ya_r x >= yc_r
        m = len(rows)
        ra, ca = np.nonzero(ya[rows])
        model.add_rows(
            np.concatenate([np.arange(m), ra]),
            np.concatenate([np.full(m, t[0]), x[ca]]),
            np.concatenate([np.ones(m), -ya[rows][ra, ca]]),
            yc[rows],
            np.inf,
            n=m,
        )
        model.set_objective(t, np.ones(1), "min")
        sr = solve_highs(model, threads=1)
        if sr.status == "infeasible":
            proven[:] = True
            return proven, None
        if sr.status == "optimal" and sr.objective is not None:
            if sr.objective > tol:
                proven[j] = True
            elif sr.objective <= 0.0 and found is None and sr.x is not None:
                found = sr.x[x]
    return proven, found


def _score(d: _Domain, values) -> float:
    """Priority (lowest first): the worst open disjunct's best row bound."""
    return float(values(d.lb.unsqueeze(0), d.open_dj.unsqueeze(0))[0])


def _queue_lb(queue: list) -> float:
    return float(min(item[0] for item in queue)) if queue else float("inf")
