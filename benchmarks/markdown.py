"""Write a benchmark script's Markdown output into the results page or the lab notes.

Every script names its output by a title (e.g. "VNN-COMP 2022 mnist_fc (issue 8)"). The results
page, BENCHMARKS.md, shows a script's output between two marker lines, ``begin_marker(title)``
and ``end_marker(title)``; the hand-written text around them (question, command, reading) is
left alone. Output the page does not show goes to its ``## {title}`` section of the lab notes,
docs/notes/benchmarks-history.md. A title found in neither is appended to the page as a new
``## {title}`` section, so a new script's first table is not lost.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
NOTES = ROOT / "docs" / "notes" / "benchmarks-history.md"


def begin_marker(title: str) -> str:
    """The line that opens ``title``'s generated block on the results page."""
    return f"<!-- begin generated: {title} -->"


def end_marker(title: str) -> str:
    """The line that closes ``title``'s generated block on the results page."""
    return f"<!-- end generated: {title} -->"


def _section_pattern(title: str) -> re.Pattern[str]:
    """A ``## {title}`` section, up to the next ``## `` heading or the end."""
    return re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)


def _replace_block(text: str, title: str, body: str) -> str | None:
    """``text`` with ``title``'s marker block replaced by ``body``; None without the markers."""
    begin, end = begin_marker(title), end_marker(title)
    a = text.find(begin + "\n")
    b = text.find(end, a + len(begin)) if a >= 0 else -1
    if a < 0 or b < 0:
        return None
    return text[: a + len(begin) + 1] + "\n" + body.strip() + "\n\n" + text[b:]


def _replace_section(text: str, title: str, body: str) -> str:
    """``text`` with its ``## {title}`` section replaced by ``body``, or the section appended."""
    block = f"## {title}\n\n{body.strip()}\n"
    pattern = _section_pattern(title)
    if pattern.search(text):
        return pattern.sub(lambda _: block + "\n", text).rstrip() + "\n"
    return text.rstrip() + "\n\n" + block


def target(title: str, path: Path = BENCHMARKS, notes: Path | None = NOTES) -> Path:
    """The file that holds ``title``'s output: ``path``, unless ``path`` has no block for it
    and ``notes`` has its ``## {title}`` section."""
    text = path.read_text() if path.exists() else ""
    if notes is None or begin_marker(title) in text or not notes.exists():
        return path
    return notes if _section_pattern(title).search(notes.read_text()) else path


def write_section(
    title: str, body: str, path: Path = BENCHMARKS, notes: Path | None = None
) -> None:
    """Put ``body`` where ``title``'s output lives, leaving the rest of the file alone.

    ``notes`` is the lab notes file to fall back to (see the module docstring); by default the
    project's when ``path`` is the results page, none for any other ``path``.
    """
    if notes is None and path.resolve() == BENCHMARKS.resolve():
        notes = NOTES
    path = target(title, path, notes)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    new = _replace_block(text, title, body)
    path.write_text(new if new is not None else _replace_section(text, title, body))
