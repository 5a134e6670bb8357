"""benchmarks.markdown: a script's output lands in its block, or its notes section, and nowhere
else."""

from __future__ import annotations

from pathlib import Path

from benchmarks.markdown import begin_marker, end_marker, target, write_section

PAGE = """# Benchmarks

## 1. A question

Hand-written command and reading.

{begin}

| old | table |

{end}

- reading line

## Lab notes
"""
NOTES = """# Benchmarks

## Other (issue 9)

old notes table

## Last (issue 10)

kept
"""


def files(tmp_path: Path) -> tuple[Path, Path]:
    page, notes = tmp_path / "BENCHMARKS.md", tmp_path / "history.md"
    page.write_text(PAGE.format(begin=begin_marker("A (issue 1)"), end=end_marker("A (issue 1)")))
    notes.write_text(NOTES)
    return page, notes


def test_a_block_on_the_page_is_replaced_and_nothing_else(tmp_path: Path) -> None:
    page, notes = files(tmp_path)
    before = page.read_text()
    write_section("A (issue 1)", "| new | table |\n", page, notes)
    after = page.read_text()
    assert "| new | table |" in after and "| old | table |" not in after
    assert after == before.replace("| old | table |", "| new | table |")
    write_section("A (issue 1)", "| new | table |", page, notes)
    assert page.read_text() == after  # a second run changes nothing
    assert notes.read_text() == NOTES


def test_a_title_only_the_notes_hold_goes_to_the_notes(tmp_path: Path) -> None:
    page, notes = files(tmp_path)
    before = page.read_text()
    assert target("Other (issue 9)", page, notes) == notes
    write_section("Other (issue 9)", "new notes table", page, notes)
    assert page.read_text() == before
    text = notes.read_text()
    assert "new notes table" in text and "old notes table" not in text
    assert text.endswith("## Last (issue 10)\n\nkept\n")


def test_an_unknown_title_is_appended_to_the_page(tmp_path: Path) -> None:
    page, notes = files(tmp_path)
    assert target("New (issue 11)", page, notes) == page
    write_section("New (issue 11)", "fresh", page, notes)
    assert page.read_text().endswith("## Lab notes\n\n## New (issue 11)\n\nfresh\n")
    assert notes.read_text() == NOTES


def test_another_file_without_notes_keeps_its_sections(tmp_path: Path) -> None:
    other = tmp_path / "other.md"
    other.write_text(NOTES)
    write_section("Other (issue 9)", "replaced", other)
    assert other.read_text() == NOTES.replace("old notes table", "replaced")
