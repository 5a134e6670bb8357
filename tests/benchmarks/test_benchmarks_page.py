"""BENCHMARKS.md and the benchmark scripts do not drift apart.

Every script a command on the page names exists, and the block it writes its Markdown into is on
the page; every other script's section is in the lab notes, so a re-run never appends a stray
section to the page. The page's hand-copied peers rows must be rows of the generated report.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from benchmarks.markdown import BENCHMARKS, NOTES, begin_marker, end_marker, target

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "benchmarks"
# Module-level names the scripts give their section title (a leading "## " is dropped).
TITLE_NAMES = {"TITLE", "SECTION", "HEADING"}
# The issue's questions, in its order, then the pointer to the notes.
QUESTIONS = [
    "seed experiment",
    "OMLT and PySCIPOpt-ML",
    "VNN-COMP",
    "Batch",
    "Bounds",
    "Constraint learning",
]
PEERS = "Peers: OMLT and PySCIPOpt-ML (issue 7)"


def page() -> str:
    return BENCHMARKS.read_text()


def named_scripts(text: str) -> set[str]:
    """File names of the ``benchmarks/*.py`` scripts the page's commands run."""
    return set(re.findall(r"python benchmarks/(\w+\.py)", text))


def titles(script: Path) -> set[str]:
    """The section titles ``script`` writes: its TITLE/SECTION/HEADING string constants and the
    literal (or constant) first argument of each ``write_section`` call."""
    tree = ast.parse(script.read_text())
    consts = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    found = {v for k, v in consts.items() if k in TITLE_NAMES}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "write_section"
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in consts:
                found.add(consts[arg.id])
    return {t.removeprefix("## ") for t in found}


def writers() -> dict[str, set[str]]:
    """Every script in benchmarks/ that writes Markdown, with its titles."""
    out = {p.name: titles(p) for p in sorted(SCRIPTS.glob("*.py")) if p.name != "markdown.py"}
    return {name: ts for name, ts in out.items() if ts}


def test_every_script_a_command_names_exists() -> None:
    names = named_scripts(page())
    # One script per question at least: the page cannot pass by naming none.
    assert {
        "seed_experiment.py",
        "bench_peers.py",
        "bench_vnncomp.py",
        "bench_batch.py",
        "bench_deep_bounds.py",
    } <= names
    missing = sorted(n for n in names if not (SCRIPTS / n).is_file())
    assert not missing, f"BENCHMARKS.md runs scripts that are not in benchmarks/: {missing}"


def test_scripts_on_the_page_write_into_their_blocks() -> None:
    text = page()
    all_writers = writers()
    for name in sorted(named_scripts(text)):
        assert name in all_writers, f"{name} is on the page but writes no section"
        for title in all_writers[name]:
            begin, end = begin_marker(title), end_marker(title)
            assert text.count(begin) == 1, f"{name}: no single {begin!r} on the page"
            assert text.count(end) == 1, f"{name}: no single {end!r} on the page"
            assert text.index(begin) < text.index(end)
            assert target(title) == BENCHMARKS


def test_scripts_off_the_page_write_into_the_notes() -> None:
    text, notes = page(), NOTES.read_text()
    off = {n: ts for n, ts in writers().items() if n not in named_scripts(text)}
    assert "bench_pruning.py" in off and "bench_untargeted.py" in off
    for name, ts in off.items():
        for title in ts:
            assert begin_marker(title) not in text, f"{name}'s block is on the page"
            assert f"\n## {title}\n" in notes, f"{name} has no '## {title}' in {NOTES.name}"
            assert target(title) == NOTES


def test_the_page_answers_the_issues_questions_in_order() -> None:
    heads = re.findall(r"^## (.+)$", page(), re.M)
    assert len(heads) == len(QUESTIONS) + 1 and heads[-1] == "Lab notes"
    for i, (head, question) in enumerate(zip(heads, QUESTIONS, strict=False), 1):
        assert head.startswith(f"{i}. ") and question in head, head


def test_the_peers_headline_rows_are_rows_of_the_generated_report() -> None:
    text = page()
    start, stop = text.index(begin_marker(PEERS)), text.index(end_marker(PEERS))
    report = set(text[start:stop].splitlines())
    before = text[: text.index("<details>", text.index("## 2. "))]
    head = before.index("| network | nn2mip variant (sign)")
    rows = [line for line in before[head:].splitlines() if line.startswith("|")][2:]
    assert len(rows) >= 4
    stale = [r for r in rows if r not in report]
    assert not stale, f"headline rows not in the generated peers report: {stale}"


@pytest.mark.parametrize(
    "doc", [BENCHMARKS, *sorted((ROOT / "docs" / "notes").glob("*.md"))], ids=lambda p: p.name
)
def test_relative_links_resolve(doc: Path) -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", doc.read_text())
    local = [u.split("#")[0] for u in links if not re.match(r"[a-z]+:", u) and u[0] != "#"]
    broken = sorted({u for u in local if u and not (doc.parent / u).exists()})
    assert not broken, f"{doc.name}: links to missing files {broken}"
