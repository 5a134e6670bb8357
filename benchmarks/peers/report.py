"""Tables and cross-checks over the results of every tool on every instance."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from nn2mip.bounds import DEFAULT_BOUND_METHOD

DECIDED = ("adversarial", "robust")
MARGIN_TOL = 1e-4


def _median(vals: Iterable[float]) -> float:
    v = [x for x in vals if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else math.nan


def _fmt(x: float, digits: int = 2) -> str:
    if not math.isfinite(x):
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}" if abs(x) >= 0.01 else f"{x:.3g}"


def legacy(row: dict[str, Any]) -> bool:
    """A row of the first peers run (before commands were recorded): the peers under a heavy
    machine load, and nn2mip with interval bounds (``nn2mip``, ``nn2mip-pyomo``) or an older
    sign stop (``nn2mip[symbolic]``), no PGD, the toolkit as of then."""
    return "command" not in row


def label(row: dict[str, Any]) -> str:
    """Tool and question: ``nn2mip[symbolic+pgd] (sign)``, ``OMLT (opt)``; legacy rows
    are marked ``old``."""
    return f"{row['tool']} ({row['mode']}{', old' if legacy(row) else ''})"


def by_instance(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """instance -> tool label -> row."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        out[r["instance"]][label(r)] = r
    return out


def disagreements(rows: list[dict[str, Any]]) -> list[str]:
    """Verdict conflicts between decided results, and optimal margins that differ."""
    msgs = []
    for inst, tools in sorted(by_instance(rows).items()):
        decided = {t: r["verdict"] for t, r in tools.items() if r["verdict"] in DECIDED}
        if len(set(decided.values())) > 1:
            msgs.append(
                f"VERDICT DISAGREEMENT on {inst}: "
                + ", ".join(f"{t}={v}" for t, v in sorted(decided.items()))
            )
        opt = {t: r["objective"] for t, r in tools.items() if _proven_optimum(r)}
        if opt and max(opt.values()) - min(opt.values()) > MARGIN_TOL:
            bounds = {t: tools[t]["bound"] for t in opt}
            # Consistent when every optimum lies below every proven bound: the solvers merely
            # stopped at different gaps (HiGHS: mip_rel_gap 1e-4 by default, SCIP: 0).
            ok = (
                all(b is not None for b in bounds.values())
                and min(bounds.values()) >= max(opt.values()) - 1e-9
            )
            msgs.append(
                f"MARGIN DISAGREEMENT on {inst} (optimal): "
                + ", ".join(f"{t}={v:.6g} (bound {bounds[t]:.6g})" for t, v in sorted(opt.items()))
                + (
                    " -- consistent: each optimum is below every proven bound, a gap tolerance"
                    if ok
                    else " -- INCONSISTENT: some optimum exceeds another tool's proven bound"
                )
            )
        for t, r in tools.items():
            if r["verdict"] == "adversarial" and not r["witness_ok"]:
                msgs.append(f"UNCHECKED WITNESS on {inst} from {t}")
    return msgs


def _proven_optimum(r: dict[str, Any]) -> bool:
    """A margin proven optimal: an ``opt`` run that ended optimal (a ``sign`` run's "optimal"
    is for the problem cut off at 0, not the margin's optimum)."""
    return r["mode"] == "opt" and bool(r["optimal"]) and r["objective"] is not None


def _ratio(rows: list[dict[str, Any]], ref: dict[str, dict[str, Any]], key: str) -> float:
    """Median over instances of ``row[key] / ref_row[key]``."""
    rs = []
    for r in rows:
        base = ref.get(r["instance"])
        if base is None or not math.isfinite(r[key]) or not math.isfinite(base[key]):
            continue
        rs.append(r[key] / max(base[key], 1e-9))
    return _median(rs)


# The headline nn2mip rows: what a user gets by default (the batch engine's PGD first, then the
# MIP with the default bounds and the sign stop), and the same MIP to optimality for ``opt``.
HEADLINE = f"nn2mip[{DEFAULT_BOUND_METHOD}+pgd]"
HEADLINE_OPT = f"nn2mip[{DEFAULT_BOUND_METHOD}]"
PEERS = ("OMLT", "PySCIPOpt-ML")


def _rank(row: dict[str, Any]) -> tuple[int, str]:
    """Table order: the headline variant, other current nn2mip variants, peers, legacy rows."""
    tool = row["tool"]
    if legacy(row):
        return 4, tool
    if tool in (HEADLINE, HEADLINE_OPT):
        return 0, "" if tool == HEADLINE else tool
    if tool.startswith("nn2mip-pyomo"):
        return 2, tool
    if tool.startswith("nn2mip"):
        return 1, tool
    return 3, tool


def _refs(rows: list[dict[str, Any]], tool: str, mode: str) -> dict[str, dict[str, Any]]:
    return {
        r["instance"]: r for r in rows if r["tool"] == tool and r["mode"] == mode and not legacy(r)
    }


def _by_cheap_attack(rs: list[dict[str, Any]]) -> str:
    """How many verdicts the center check / PGD gave (``-`` for runs without PGD)."""
    if not any(r.get("pgd") for r in rs):
        return "-"
    return str(sum(r.get("decided_by") in ("pgd", "clean") for r in rs))


def summary_table(rows: list[dict[str, Any]], time_limit: float) -> str:
    """Markdown: tool x network, medians, decided counts, ratios to the headline nn2mip rows."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["network"], label(r))].append(r)
    ref_sign = _refs(rows, HEADLINE, "sign")
    ref_opt = _refs(rows, HEADLINE_OPT, "opt")
    head = (
        "| network | tool (question) | n | adv / robust / timeout / error | by PGD "
        "| median build s | median solve s | median total s | load "
        f"| total / {HEADLINE} (sign) | total / {HEADLINE_OPT} (opt) "
        f"| build / {HEADLINE_OPT} | median binaries / rows / nonzeros |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for (net, tool), rs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], _rank(kv[1][0]), kv[1][0]["mode"])
    ):
        v = [r["verdict"] for r in rs]
        err = sum(x in ("error", "unknown") for x in v)
        counts = f"{v.count('adversarial')} / {v.count('robust')} / {v.count('timeout')} / {err}"
        # A timed-out run counts at its full time (it ran that long without deciding).
        total = _median(r["total"] for r in rs)
        censored = sum(x == "timeout" for x in v) * 2 >= len(v)
        tot = (">=" if censored else "") + _fmt(total)
        sizes = " / ".join(
            _fmt(_median(r[k] for r in rs if r[k] >= 0), 0)
            for k in ("binaries", "rows", "nonzeros")
        )
        name = f"**{tool}**" if rs[0]["tool"] == HEADLINE and not legacy(rs[0]) else tool
        lines.append(
            f"| {net} | {name} | {len(rs)} | {counts} | {_by_cheap_attack(rs)} "
            f"| {_fmt(_median(r['build'] for r in rs), 3)} "
            f"| {_fmt(_median(r['solve'] for r in rs))} | {tot} "
            f"| {_fmt(_median(r['load_avg'] for r in rs), 1)} "
            f"| {_fmt(_ratio(rs, ref_sign, 'total'))} "
            f"| {_fmt(_ratio(rs, ref_opt, 'total'))} "
            f"| {_fmt(_ratio(rs, ref_opt, 'build'), 1)} | {sizes} |"
        )
    return "\n".join(lines)


def instance_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per instance, verdict and total time per tool (legacy rows
    left out: they are in the summary and the store)."""
    first = {}
    for r in rows:
        if not legacy(r):
            first.setdefault(label(r), r)
    labels = sorted(first, key=lambda k: (_rank(first[k]), first[k]["mode"]))
    lines = [
        "| instance | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    short = {"adversarial": "adv", "robust": "rob", "timeout": "T/O", "error": "ERR"}
    for inst, tools in sorted(by_instance(rows).items()):
        cells = []
        for t in labels:
            r = tools.get(t)
            if r is None:
                cells.append("")
                continue
            m = r["objective"] if _proven_optimum(r) else None
            extra = f", {m:+.4f}" if m is not None else ""
            cells.append(f"{short.get(r['verdict'], r['verdict'])} {_fmt(r['total'])}{extra}")
        lines.append(f"| {inst} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per network and nn2mip variant (sign), against the fastest peer and OMLT's build.

    Targets (issue 7): median total >= 5x faster than the best peer; build >= 10x faster than
    OMLT (its remeasured rows when there are any). Medians are over the instances both runs
    cover; timeouts count at their full time. The headline variant comes first, legacy rows
    last. A PGD-decided run builds no model, so build medians are over the runs that built one.
    """
    lines = [
        "| network | nn2mip variant (sign): median total s | decided | fastest peer (question): "
        "median total s | decided | common instances | speed-up (>= 5x?) "
        "| OMLT / nn2mip median build (>= 10x?) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for net in sorted({r["network"] for r in rows}):
        rs = [r for r in rows if r["network"] == net]
        omlt = [r for r in rs if r["tool"] == "OMLT"]
        omlt_fresh = [r for r in omlt if not legacy(r)]
        omlt_build = _median(r["build"] for r in (omlt_fresh or omlt))
        variants: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rs:
            if r["tool"].startswith("nn2mip") and r["mode"] == "sign":
                variants[label(r)].append(r)
        for name, vrows in sorted(variants.items(), key=lambda kv: _rank(kv[1][0])):
            ours = {r["instance"]: r for r in vrows}
            # Compare on the instances both runs cover.
            # Peers remeasured beside the current nn2mip rows when there are any, else the
            # first run's peer rows (marked old).
            fresh = any(r["tool"] in PEERS and not legacy(r) for r in rs)
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in rs:
                if r["tool"] in PEERS and r["instance"] in ours and legacy(r) != fresh:
                    groups[label(r)].append(r)
            peer = min(groups, key=lambda k: _median(r["total"] for r in groups[k]), default=None)
            if peer is None:
                continue
            common = [ours[r["instance"]] for r in groups[peer]]
            peer_total = _median(r["total"] for r in groups[peer])
            ours_total = _median(r["total"] for r in common)
            speed = peer_total / max(ours_total, 1e-9)
            build = omlt_build / max(_median(r["build"] for r in ours.values()), 1e-9)
            head = vrows[0]["tool"] == HEADLINE and not legacy(vrows[0])
            shown = f"**{name}**" if head else name
            lines.append(
                f"| {net} | {shown}: {_fmt(ours_total)} | {_decided(common)} "
                f"| {peer}: {_fmt(peer_total)} | {_decided(groups[peer])} "
                f"| {len(common)} | {_fmt(speed, 1)}x {'yes' if speed >= 5 else 'no'} "
                f"| {_fmt(build, 0)}x {'yes' if build >= 10 else 'no'}"
                f"{'' if omlt_fresh else ' (OMLT old)'} |"
            )
    return "\n".join(lines)


def _decided(rs: list[dict[str, Any]]) -> str:
    return f"{sum(r['verdict'] in DECIDED for r in rs)}/{len(rs)}"
