"""Comments, docstrings and documents cite documents in the repository only: docs/domain.md for the
programme's domain facts, docs/stack-notes.md for the verified facts about transitions, RQ and twilio. A
citation of a file outside the repository (the programme's shared notes) is one a reader of the code can
never open; a cited docs/<name>.md must exist, and a cited section ("docs/x.md, "Title"") must be one of
its headings."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipoa.config import REPO_ROOT

SCANNED = ("ipoa", "workers", "tests", "templates", "workflows", "bench", "docs", "README.md")
SKIPPED = (REPO_ROOT / "ipoa" / "static",)  # vendored, minified files
SUFFIXES = {".py", ".html", ".txt", ".yaml", ".yml", ".md", ".mako", ".js", ".css", ".toml", ".cfg", ""}

# The programme's notes outside the repository, by their names there; and any path into shared/.
OUTSIDE = re.compile(r"\b(?:DOMAIN|PEERS|STACK-NOTES)(?:\.md)?\b|(?:\.\./|/work/)shared/|\bshared/[\w-]+\.md")
CITED_DOC = re.compile(r"\bdocs/([\w-]+\.md)")
# docs/x.md, "Title" | docs/x.md ("Title" | docs/x.md, section "Title"; a citation may wrap onto the next
# comment line ("# " or leading spaces between its words).
CITED_SECTION = re.compile(r'\bdocs/([\w-]+\.md)(?:,\s*(?:section\s+)?|\s+\()"([^"]+)"')


def _files():
    for entry in SCANNED:
        root = REPO_ROOT / entry
        paths = [root] if root.is_file() else root.rglob("*")
        for path in paths:
            if (path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts
                    and not any(skip in path.parents for skip in SKIPPED) and path != Path(__file__).resolve()):
                yield path


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _headings(doc: Path) -> list[str]:
    """The document's headings, without their numbers ("## 3. Who may see what" is "Who may see what")."""
    return [re.sub(r"^\d+\.\s+", "", line.lstrip("#").strip())
            for line in _text(doc).splitlines() if line.startswith("#")]


def _unwrapped(text: str) -> str:
    """A citation wrapped over comment or docstring lines, as one line."""
    return re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)


def outside_citations(text: str) -> list[str]:
    return [m.group(0) for m in OUTSIDE.finditer(text)]


def test_the_detector_finds_what_it_should_and_nothing_else():
    assert outside_citations('see DOMAIN.md, "Routing"; STACK-NOTES: a machine per object') == [
        "DOMAIN.md", "STACK-NOTES"]
    assert outside_citations("(DOMAIN: one segment) PEERS.md ../shared/STACK-NOTES.md /work/shared/x") == [
        "DOMAIN", "PEERS.md", "../shared/", "STACK-NOTES.md", "/work/shared/"]
    assert outside_citations('docs/domain.md, "Routing"; a domain model; the shared machine; ipoa.domain') == []


def test_nothing_cites_a_document_outside_the_repository():
    found = [f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()}"
             for path in _files() for n, line in enumerate(_text(path).splitlines(), 1)
             if outside_citations(line)]
    assert not found, "cite docs/domain.md or docs/stack-notes.md instead:\n" + "\n".join(found)


def test_every_cited_document_exists():
    missing = sorted({f"{path.relative_to(REPO_ROOT)}: docs/{name}"
                      for path in _files() for name in CITED_DOC.findall(_text(path))
                      if not (REPO_ROOT / "docs" / name).is_file()})
    assert not missing, "\n".join(missing)


def test_every_cited_section_is_a_heading_of_its_document():
    headings = {doc.name: _headings(doc) for doc in (REPO_ROOT / "docs").glob("*.md")}
    headings["README.md"] = _headings(REPO_ROOT / "README.md")
    wrong, checked = [], 0
    for path in _files():
        for name, title in CITED_SECTION.findall(_unwrapped(_text(path))):
            checked += 1
            if name in headings and not any(h == title or h.startswith(title) for h in headings[name]):
                wrong.append(f"{path.relative_to(REPO_ROOT)}: docs/{name}, \"{title}\"")
    assert checked > 20  # the code cites sections by the dozen: a pattern finding none would prove nothing
    assert not wrong, "no such section:\n" + "\n".join(sorted(set(wrong)))


def test_a_section_citation_is_read_wherever_it_wraps():
    text = _unwrapped('# as docs/domain.md, section\n# "SMS to\n# professionals" says; (docs/security.md ("Fuzzing")')
    assert CITED_SECTION.findall(text) == [("domain.md", "SMS to professionals"), ("security.md", "Fuzzing")]
    assert CITED_SECTION.findall('(docs/security.md)\n    ("02/04/1938", False)') == []


@pytest.mark.parametrize("doc", ["domain.md", "stack-notes.md"])
def test_the_notes_the_code_relies_on_are_in_the_repository(doc):
    assert _headings(REPO_ROOT / "docs" / doc), f"docs/{doc} has no sections to cite"
