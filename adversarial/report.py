"""Reports from a results store: CSV, Markdown summary, cactus plot, dense-vs-pruned scatter.

The store is opened read-only; every number in the report is computed from its rows by the
functions below, so tests can recompute them independently.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adversarial.store import COLUMN_NAMES, ResultStore
from nn2mip.errors import InvalidInputError

DECIDED = ("adversarial", "robust")


@dataclass
class ModelStats:
    """Per-model figures of the summary."""

    model_path: str
    model_id: str
    shape: str
    weights: int
    accuracy: float | None
    instances: int
    verdicts: dict[str, int]
    decided_by: dict[str, int]
    decided: int
    median_time: float
    mean_time: float
    median_decided_time: float | None


@dataclass
class PairStats:
    """Dense vs pruned on the instances both were run on."""

    dense: str
    pruned: str
    common: int
    both_solved: int
    only_dense: int
    only_pruned: int
    same_verdict: int
    median_speedup: float | None
    speedups: list[float] = field(default_factory=list)


@dataclass
class Report:
    models: list[ModelStats]
    pairs: list[PairStats]
    files: list[Path]


def pair_key(row: dict[str, object]) -> tuple[object, ...]:
    """Instance identity without the model. For "seed" the target is each model's own runner-up,
    so it is left out: the same input/eps/norm is the same question."""
    target = -1 if row["problem"] == "seed" else row["target"]
    return (row["dataset"], row["input_id"], row["eps"], row["norm"], row["problem"], target)


def load_rows(db_path: str | Path) -> list[dict[str, object]]:
    with ResultStore(db_path, readonly=True) as store:
        return store.rows()


def model_stats(rows: list[dict[str, object]]) -> list[ModelStats]:
    by_model: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        by_model[str(r["model_path"])].append(r)
    out = []
    for path, rs in by_model.items():
        times = np.array([float(r["total_time"] or 0.0) for r in rs])
        dec = [float(r["total_time"] or 0.0) for r in rs if r["verdict"] in DECIDED]
        acc = rs[0]["model_accuracy"]
        out.append(
            ModelStats(
                model_path=path,
                model_id=str(rs[0]["model_id"]),
                shape=str(rs[0]["model_shape"]),
                weights=int(rs[0]["model_weights"] or 0),
                accuracy=None if acc is None else float(acc),  # type: ignore[arg-type]
                instances=len(rs),
                verdicts=_count(r["verdict"] for r in rs),
                decided_by=_count(r["decided_by"] for r in rs if r["verdict"] in DECIDED),
                decided=len(dec),
                median_time=float(np.median(times)),
                mean_time=float(np.mean(times)),
                median_decided_time=float(np.median(dec)) if dec else None,
            )
        )
    return out


def _count(values: object) -> dict[str, int]:
    c: dict[str, int] = defaultdict(int)
    for v in values:  # type: ignore[attr-defined]
        c[str(v)] += 1
    return dict(sorted(c.items()))


def _resolve(name: str, models: list[ModelStats]) -> str:
    for m in models:
        if (
            name in (m.model_path, m.model_id)
            or Path(name).resolve() == Path(m.model_path).resolve()
        ):
            return m.model_path
    known = ", ".join(m.model_id for m in models)
    raise InvalidInputError(f"--pair: no model {name!r} in the results (known: {known})")


def auto_pairs(rows: list[dict[str, object]], models: list[ModelStats]) -> list[tuple[str, str]]:
    """Models run on the same instance set form a group; its model with most weights is the
    dense one and is paired with every other member."""
    keys: dict[str, set[tuple[object, ...]]] = defaultdict(set)
    for r in rows:
        keys[str(r["model_path"])].add(pair_key(r))
    groups: dict[frozenset[tuple[object, ...]], list[ModelStats]] = defaultdict(list)
    for m in models:
        groups[frozenset(keys[m.model_path])].append(m)
    pairs = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda m: (-m.weights, m.model_id))
        pairs += [(members[0].model_path, m.model_path) for m in members[1:]]
    return pairs


def pair_stats(rows: list[dict[str, object]], dense: str, pruned: str) -> PairStats:
    d = {pair_key(r): r for r in rows if r["model_path"] == dense}
    p = {pair_key(r): r for r in rows if r["model_path"] == pruned}
    common = sorted(set(d) & set(p), key=str)
    sp, only_d, only_p, same = [], 0, 0, 0
    for k in common:
        sd, spr = d[k]["verdict"] in DECIDED, p[k]["verdict"] in DECIDED
        same += d[k]["verdict"] == p[k]["verdict"]
        if sd and spr:
            sp.append(float(d[k]["total_time"]) / max(float(p[k]["total_time"]), 1e-9))  # type: ignore[arg-type]
        elif sd:
            only_d += 1
        elif spr:
            only_p += 1
    return PairStats(
        dense=str(d[common[0]]["model_id"]) if common else dense,
        pruned=str(p[common[0]]["model_id"]) if common else pruned,
        common=len(common),
        both_solved=len(sp),
        only_dense=only_d,
        only_pruned=only_p,
        same_verdict=same,
        median_speedup=float(np.median(sp)) if sp else None,
        speedups=sp,
    )


def write_csv(rows: list[dict[str, object]], path: Path) -> Path:
    """All columns but the witness (kept in the store; it would dwarf the rest)."""
    cols = ["id", *[c for c in COLUMN_NAMES if c != "witness"]]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summary_markdown(models: list[ModelStats], pairs: list[PairStats], db: str) -> str:
    lines = [f"# Adversarial batch report\n\nResults file: `{db}`\n", "## Models\n"]
    lines.append(
        "| model | shape | nonzero weights | accuracy | instances | adversarial | robust | "
        "timeout | unknown | decided by pgd / mip / clean | median time (s) | mean time (s) |"
    )
    lines.append("|" + "---|" * 12)
    for m in models:
        v, by = m.verdicts, m.decided_by
        lines.append(
            f"| {m.model_id} | {m.shape} | {m.weights} | {_fmt(m.accuracy, 4)} | {m.instances} | "
            f"{v.get('adversarial', 0)} | {v.get('robust', 0)} | {v.get('timeout', 0)} | "
            f"{v.get('unknown', 0)} | {by.get('pgd', 0)} / {by.get('mip', 0)} / "
            f"{by.get('clean', 0)} | {_fmt(m.median_time, 4)} | {_fmt(m.mean_time, 4)} |"
        )
    lines.append("\nTimes are total wall time per instance (PGD + bounds + build + solve).\n")
    lines.append("## Dense vs pruned\n")
    if not pairs:
        lines.append("No pairs (give `--pair DENSE PRUNED`, or run models on the same instances).")
    else:
        lines.append(
            "| dense | pruned | common instances | both solved | median speedup | "
            "only dense solved | only pruned solved | same verdict |"
        )
        lines.append("|" + "---|" * 8)
        for p in pairs:
            lines.append(
                f"| {p.dense} | {p.pruned} | {p.common} | {p.both_solved} | "
                f"{_fmt(p.median_speedup, 2)}x | {p.only_dense} | {p.only_pruned} | "
                f"{p.same_verdict} |"
            )
        lines.append(
            "\nSpeedup = dense total time / pruned total time, per instance both decided "
            "(adversarial or robust), then the median."
        )
    return "\n".join(lines) + "\n"


def cactus_plot(rows: list[dict[str, object]], models: list[ModelStats], path: Path) -> Path:
    # matplotlib only when a plot is drawn: a heavy import, and Agg must be chosen before pyplot.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in models:
        t = np.sort(
            [
                float(r["total_time"])  # type: ignore[arg-type]
                for r in rows
                if r["model_path"] == m.model_path and r["verdict"] in DECIDED
            ]
        )
        ax.step(t, np.arange(1, len(t) + 1), where="post", label=f"{m.model_id} ({m.shape})")
    ax.set_xscale("log")
    ax.set_xlabel("time per instance (s)")
    ax.set_ylabel("instances decided")
    ax.set_title("Cactus plot")
    ax.grid(True, which="both", alpha=0.3)
    # Below the axes: model names are long and would cover the curves (or leave the figure).
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def scatter_plot(rows: list[dict[str, object]], dense: str, pruned: str, path: Path) -> Path:
    # matplotlib only when a plot is drawn: a heavy import, and Agg must be chosen before pyplot.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = {pair_key(r): r for r in rows if r["model_path"] == dense}
    p = {pair_key(r): r for r in rows if r["model_path"] == pruned}
    common = [k for k in d if k in p]
    x = np.array([max(float(d[k]["total_time"]), 1e-4) for k in common])  # type: ignore[arg-type]
    y = np.array([max(float(p[k]["total_time"]), 1e-4) for k in common])  # type: ignore[arg-type]
    both = np.array([d[k]["verdict"] in DECIDED and p[k]["verdict"] in DECIDED for k in common])
    fig, ax = plt.subplots(figsize=(5, 5))
    if len(common):
        ax.scatter(x[both], y[both], s=14, label="both decided")
        if np.any(~both):
            ax.scatter(x[~both], y[~both], s=18, marker="x", label="not decided by both")
        lo, hi = min(x.min(), y.min()) / 1.5, max(x.max(), y.max()) * 1.5
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="equal time")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    name_d = d[common[0]]["model_id"] if common else dense
    name_p = p[common[0]]["model_id"] if common else pruned
    ax.set_xlabel(f"{name_d} time (s)")
    ax.set_ylabel(f"{name_p} time (s)")
    ax.set_title("Dense vs pruned, per instance")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def build_report(
    db_path: str | Path,
    out_dir: str | Path,
    pairs: list[tuple[str, str]] | None = None,
) -> Report:
    """Write results.csv, summary.md, cactus.png and one scatter per dense/pruned pair.

    ``out_dir`` is checked (a directory, or creatable) before the store is read.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"report output {out} exists and is not a directory")
    rows = load_rows(db_path)
    if not rows:
        raise InvalidInputError(f"{db_path} holds no results yet")
    models = model_stats(rows)
    if pairs:
        resolved = [(_resolve(a, models), _resolve(b, models)) for a, b in pairs]
        for (a, b), given in zip(resolved, pairs, strict=True):
            if a == b:
                raise InvalidInputError(
                    f"--pair {given[0]} {given[1]}: both name the same model; give a dense "
                    "and a pruned one"
                )
    else:
        resolved = auto_pairs(rows, models)
    out.mkdir(parents=True, exist_ok=True)
    files = [write_csv(rows, out / "results.csv")]
    pstats = [pair_stats(rows, a, b) for a, b in resolved]
    md = out / "summary.md"
    md.write_text(summary_markdown(models, pstats, str(db_path)))
    files.append(md)
    files.append(cactus_plot(rows, models, out / "cactus.png"))
    for (a, b), ps in zip(resolved, pstats, strict=True):
        name = f"scatter_{_safe(ps.dense)}_vs_{_safe(ps.pruned)}.png"
        files.append(scatter_plot(rows, a, b, out / name))
    return Report(models, pstats, files)
