"""Adversarial problems as MIPs: targeted max-margin and the untargeted "does any class win".

A verdict rests on independent evidence: "adversarial" needs a witness that passes the
forward-pass re-check; "robust" needs the solver's proven dual bound on the margin to be below
``-ROBUST_TOL``. Anything else is "timeout" or "unknown", never a guess.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from torch import nn

from adversarial.bab import bab_fits, bab_verify
from adversarial.methods import METHODS
from adversarial.witness import WitnessCheck, check_witness
from nn2mip.bounds import BOUNDS_SHARE, DEFAULT_BOUND_METHOD
from nn2mip.errors import InvalidInputError
from nn2mip.formulation import Formulation, FormulationStats, build_formulation
from nn2mip.highs_backend import SolveResult, solve_highs
from nn2mip.network import Network
from nn2mip.region import InputRegion, Norm, ball_region
from nn2mip.sign import solve_sign
from nn2mip.threads import torch_threads
from nn2mip.vnnlib import OutputConstraint

Verdict = Literal["adversarial", "robust", "timeout", "unknown"]

# The dual bound must prove the margin below this to call an instance robust.
ROBUST_TOL = 1e-6
# A MIP solution with at least this margin ends the search (then it is re-checked).
FOUND_TOL = 1e-6
# The HiGHS cutoff for "robust" sits ten times further out than ROBUST_TOL: HiGHS prunes nodes
# within its own absolute gap (1e-6) of a cutoff, and that slack must never hide a positive margin.
CUTOFF = 10 * ROBUST_TOL
# In "auto", branch and bound's share of the time limit; its budget when there is no limit.
BAB_SHARE = 0.6
BAB_BUDGET = 60.0


@dataclass
class AttackResult:
    """Outcome of one adversarial instance."""

    verdict: Verdict
    label: int
    target: int | None
    eps: float
    norm: str
    margin: float | None = None
    bound: float | None = None
    found_class: int | None = None
    witness: np.ndarray | None = None
    check: WitnessCheck | None = None
    decided_by: str = "mip"
    bounds_time: float = 0.0
    build_time: float = 0.0
    solve_time: float = 0.0
    total_time: float = 0.0
    stats: FormulationStats = field(default_factory=FormulationStats)
    solver_status: str = ""
    nodes: int = 0
    mip_solves: int = 0
    bab_time: float = 0.0
    bab_domains: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary (the witness as a list)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("witness", "check", "stats")}
        d["stats"] = self.stats.as_dict()
        d["witness"] = None if self.witness is None else self.witness.tolist()
        d["witness_checked"] = None if self.check is None else bool(self.check.passed)
        return d


def _validate(network: Network, x0: np.ndarray, label: int, target: int | None) -> np.ndarray:
    x = network.check_input(x0)[0]
    n = network.output_size
    if not 0 <= label < n:
        raise InvalidInputError(f"label {label} is not a class of a network with {n} outputs")
    if target is not None and (not 0 <= target < n or target == label):
        raise InvalidInputError(f"target {target} must be a class other than the label {label}")
    return x


def _formulation(
    network: Network,
    region: InputRegion,
    bound_method: str,
    threads: int,
    time_limit: float | None,
) -> Formulation:
    """The formulation, its bounds computed on ``threads`` torch threads (alpha-CROWN and the
    LP's alpha start on torch's default count ran up to 10x slower beside a busy core) within
    ``BOUNDS_SHARE`` of ``time_limit``."""
    cap = None if time_limit is None else BOUNDS_SHARE * time_limit
    with torch_threads(threads):
        return build_formulation(network, region, bound_method=bound_method, bound_time_limit=cap)


def _margin_objective(form: Formulation, label: int, target: int) -> None:
    out = form.output_cols
    form.model.set_objective(np.array([out[target], out[label]]), np.array([1.0, -1.0]), "max")


def _solve_sign(
    form: Formulation, time_limit: float | None, threads: int, early_stop: bool
) -> SolveResult:
    if early_stop:
        # nn2mip.sign.DEFAULT_METHOD is the fastest variant measured by bench_bounds.py.
        return solve_sign(form.model, FOUND_TOL, CUTOFF, time_limit=time_limit, threads=threads)
    return solve_highs(form.model, time_limit=time_limit, threads=threads)


def _judge(
    res: SolveResult,
    form: Formulation,
    network: Network,
    label: int,
    target: int | None,
    torch_model: nn.Module | None,
) -> tuple[Verdict, WitnessCheck | None, str]:
    """Turn a solve into a verdict using only re-checked evidence."""
    note = ""
    if res.x is not None and res.objective is not None and res.objective > 0.0:
        chk = check_witness(
            network, res.x[form.input_cols], form.region, label, target, torch_model
        )
        if chk.passed:
            return "adversarial", chk, ""
        note = f"MIP witness failed the forward-pass check (margin {chk.margin:.3g})"
    if res.dual_bound is not None and res.dual_bound <= -ROBUST_TOL:
        return "robust", None, note
    if res.status == "time_limit":
        return "timeout", None, note
    return "unknown", None, note or f"solver status {res.status}"


def _record(result: AttackResult, res: SolveResult) -> None:
    result.solve_time += res.solve_time
    result.nodes += res.nodes
    result.mip_solves += 1
    result.solver_status = res.status


def targeted_attack(
    network: Network,
    x0: np.ndarray,
    label: int,
    target: int,
    eps: float,
    norm: Norm = "inf",
    domain: tuple[float, float] = (0.0, 1.0),
    time_limit: float | None = None,
    threads: int = 1,
    bound_method: str = DEFAULT_BOUND_METHOD,
    torch_model: nn.Module | None = None,
    early_stop: bool = True,
    method: str = "mip",
) -> AttackResult:
    """Maximize ``y[target] - y[label]`` over the ``norm`` ball of radius ``eps`` around ``x0``.

    With ``early_stop`` (the sign question) and ``method`` "bab" or "auto", branch and bound
    over ReLU splits tries first (ReLU MLPs; L-inf or L1 balls); "auto" gives it ``BAB_SHARE``
    of the time limit and the MIP the rest.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    x = _validate(network, x0, label, target)
    region = ball_region(x, eps, norm, domain)
    form = _formulation(network, region, bound_method, threads, time_limit)
    _margin_objective(form, label, target)
    out = AttackResult(
        "unknown",
        label,
        target,
        eps,
        norm,
        stats=form.stats(),
        bounds_time=form.bounds_time,
        build_time=form.build_time,
    )
    mip_limit = time_limit
    if method != "mip" and early_stop and bab_fits(network):
        share = 1.0 if method == "bab" else BAB_SHARE
        left = _remaining(time_limit, t0)
        budget = BAB_BUDGET * share if left is None else left * share
        verdict, chk = _bab_sign(out, network, form, label, target, torch_model, budget, threads)
        if verdict in ("adversarial", "robust") or method == "bab":
            out.decided_by = "bab"
            _finish(out, verdict, chk, "", None, t0)
            return out
        mip_limit = _remaining(time_limit, t0)  # the MIP gets what branch and bound left
    res = _solve_sign(form, mip_limit, threads, early_stop)
    _record(out, res)
    verdict, chk, note = _judge(res, form, network, label, target, torch_model)
    if verdict == "unknown" and early_stop and note.startswith("MIP witness failed"):
        # The early stop took a numerically doubtful point; solve to optimality once.
        res = _solve_sign(form, _remaining(time_limit, t0), threads, early_stop=False)
        _record(out, res)
        verdict, chk, note = _judge(res, form, network, label, target, torch_model)
    _finish(out, verdict, chk, note, res, t0)
    return out


def _bab_sign(
    out: AttackResult,
    network: Network,
    form: Formulation,
    label: int,
    target: int,
    torch_model: nn.Module | None,
    budget: float,
    threads: int,
) -> tuple[Verdict, WitnessCheck | None]:
    """Branch and bound on "y[target] >= y[label] somewhere in the box": robust when it proves
    ``y[label] - y[target] > ROBUST_TOL`` everywhere, adversarial on a re-checked witness."""
    region = form.region
    c = np.zeros((1, network.output_size))
    c[0, label], c[0, target] = 1.0, -1.0
    found: list[WitnessCheck] = []

    def accept(x: np.ndarray) -> bool:
        chk = check_witness(network, x, region, label, target, torch_model)
        if chk.passed:
            found.append(chk)
        return chk.passed

    with torch_threads(threads):
        br = bab_verify(
            network,
            region.lower,
            region.upper,
            (OutputConstraint(c, np.zeros(1)),),
            form.bounds,
            time.perf_counter() + budget,
            accept=accept,
            tol=ROBUST_TOL,
            l1=(region.center, region.eps) if region.norm == "1" else None,
        )
    out.bab_time, out.bab_domains = br.time, br.domains
    if br.status == "candidate" and found:
        return "adversarial", found[-1]
    if br.status == "unsat":
        out.bound = -br.lower_bound  # max margin <= -(proven lower bound of y[label]-y[target])
        return "robust", None
    return ("timeout" if br.status == "timeout" else "unknown"), None


def _remaining(time_limit: float | None, t0: float) -> float | None:
    if time_limit is None:
        return None
    return max(time_limit - (time.perf_counter() - t0), 1e-3)


def _finish(
    out: AttackResult,
    verdict: Verdict,
    chk: WitnessCheck | None,
    note: str,
    res: SolveResult | None,
    t0: float,
) -> None:
    out.verdict, out.check, out.note = verdict, chk, note
    if chk is not None:
        out.witness, out.margin, out.found_class = chk.x, chk.margin, chk.predicted
    elif res is not None and res.objective is not None:
        out.margin = res.objective
    if res is not None and out.bound is None:
        out.bound = res.dual_bound
    out.total_time = time.perf_counter() - t0


def untargeted_attack(
    network: Network,
    x0: np.ndarray,
    label: int,
    eps: float,
    norm: Norm = "inf",
    domain: tuple[float, float] = (0.0, 1.0),
    time_limit: float | None = None,
    threads: int = 1,
    bound_method: str = DEFAULT_BOUND_METHOD,
    torch_model: nn.Module | None = None,
    strategy: Literal["loop", "single"] = "loop",
    early_stop: bool = True,
) -> AttackResult:
    """Is there an input in the ball where some class other than ``label`` scores higher?

    ``strategy="loop"`` builds the formulation once and asks each wrong class in turn (most
    likely first), stopping at the first verified witness; ``"single"`` adds a selection of the
    winning class with one binary per class and solves one MIP.
    """
    t0 = time.perf_counter()
    x = _validate(network, x0, label, None)
    region = ball_region(x, eps, norm, domain)
    # A misclassified center is its own witness.
    chk0 = check_witness(network, x, region, label, None, torch_model)
    form = _formulation(network, region, bound_method, threads, time_limit)
    out = AttackResult(
        "unknown",
        label,
        None,
        eps,
        norm,
        stats=form.stats(),
        bounds_time=form.bounds_time,
        build_time=form.build_time,
    )
    if chk0.passed:
        out.decided_by = "clean"
        _finish(out, "adversarial", chk0, "the center itself is misclassified", None, t0)
        return out
    if strategy == "single":
        return _untargeted_single(
            form, network, label, time_limit, threads, torch_model, early_stop, out, t0
        )
    if strategy != "loop":
        raise InvalidInputError(f"strategy must be 'loop' or 'single', got {strategy!r}")
    logits = network.forward(x)
    order = [int(j) for j in np.argsort(-logits) if j != label]
    bounds: list[float] = []
    verdicts: list[Verdict] = []
    notes: list[str] = []
    res: SolveResult | None = None
    for j in order:
        remaining = _remaining(time_limit, t0)
        if remaining is not None and remaining <= 1e-3:
            verdicts.append("timeout")
            break
        _margin_objective(form, label, j)
        res = _solve_sign(form, remaining, threads, early_stop)
        _record(out, res)
        verdict, chk, note = _judge(res, form, network, label, None, torch_model)
        if note:
            notes.append(f"class {j}: {note}")
        if verdict == "adversarial":
            out.bound = None
            _finish(out, "adversarial", chk, "; ".join(notes), res, t0)
            return out
        verdicts.append(verdict)
        bounds.append(res.dual_bound if res.dual_bound is not None else np.inf)
    if len(verdicts) == len(order) and all(v == "robust" for v in verdicts):
        final: Verdict = "robust"
    elif "timeout" in verdicts:
        final = "timeout"
    else:
        final = "unknown"
    out.bound = float(max(bounds)) if len(bounds) == len(order) else None
    _finish(out, final, None, "; ".join(notes), res, t0)
    out.margin = None
    return out


def _untargeted_single(
    form: Formulation,
    network: Network,
    label: int,
    time_limit: float | None,
    threads: int,
    torch_model: nn.Module | None,
    early_stop: bool,
    out: AttackResult,
    t0: float,
) -> AttackResult:
    """One MIP: max t with t <= y_j - y_label + M_j (1 - s_j), sum s_j = 1, s binary."""
    model, ycols = form.model, form.output_cols
    k = len(network.layers) - 1
    lo, hi = form.bounds.post_activation(network, k)
    others = np.array([j for j in range(network.output_size) if j != label])
    lead_lo = lo[others] - hi[label]  # bounds on y_j - y_label
    lead_hi = hi[others] - lo[label]
    t_hi = float(lead_hi.max())
    t = model.add_cols(float(lead_lo.min()), t_hi)[0]
    s = model.add_cols(0.0, 1.0, n=len(others), integer=True)
    big_m = t_hi - lead_lo
    m = len(others)
    r = np.arange(m)
    # t - y_j + y_label + M_j s_j <= M_j
    model.add_rows(
        np.concatenate([r, r, r, r]),
        np.concatenate([np.full(m, t), ycols[others], np.full(m, ycols[label]), s]),
        np.concatenate([np.ones(m), -np.ones(m), np.ones(m), big_m]),
        -np.inf,
        big_m,
        n=m,
    )
    model.add_rows(np.zeros(m), s, np.ones(m), 1.0, 1.0, n=1)
    model.set_objective(np.array([t]), np.array([1.0]), "max")
    out.stats = form.stats()
    res = _solve_sign(form, time_limit, threads, early_stop)
    _record(out, res)
    verdict, chk, note = _judge(res, form, network, label, None, torch_model)
    _finish(out, verdict, chk, note, res, t0)
    return out


def attack(
    network: Network,
    x0: np.ndarray,
    label: int,
    eps: float,
    norm: Norm = "inf",
    target: int | None = None,
    **kwargs: object,
) -> AttackResult:
    """Targeted attack when ``target`` is given, untargeted otherwise."""
    if target is None:
        return untargeted_attack(network, x0, label, eps, norm, **kwargs)  # type: ignore[arg-type]
    return targeted_attack(network, x0, label, target, eps, norm, **kwargs)  # type: ignore[arg-type]
