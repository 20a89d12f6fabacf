"""Citations a reader can follow: every `docs/...` file that code, configs, tests or docs
cite exists in the repository, and nothing cites the design notes and reference sheets that
live outside it (their figures are in docs/references.md)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("model", "simulator", "hwconfigs", "analysis", "tests", "benchmarks", "docs", ".ci")
ROOT_FILES = ("README.md", "setup.cfg", "pyproject.toml")
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".cfg", ".toml", ".txt", ".sh", ""}
DOC_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*[\w-]")
OUTSIDE = re.compile(r"(?<![\w/-])(?:docs/)?(?:REFERENCE|DESIGN)\.md")


def repository_text_files() -> list[Path]:
    """Text files of the repository, this test file (whose examples are not citations) left
    out."""
    files = [ROOT / name for name in ROOT_FILES if (ROOT / name).is_file()]
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                files.append(path)
    this_file = Path(__file__).resolve()
    return [path for path in files if path.resolve() != this_file]


def cited_doc_paths() -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    for path in repository_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in DOC_PATH.finditer(text):
            cited.setdefault(match.group(0).rstrip("."), []).append(
                str(path.relative_to(ROOT)))
    return cited


def test_the_citation_pattern_finds_what_it_should():
    found = [m.group(0) for m in DOC_PATH.finditer(
        "see docs/references.md, (docs/trace-format.md). and docs/x/y.md; not mydocs/z.md")]
    assert found == ["docs/references.md", "docs/trace-format.md", "docs/x/y.md"]
    assert OUTSIDE.search("figures (REFERENCE.md)") and OUTSIDE.search("docs/DESIGN.md")


def test_every_cited_doc_exists():
    cited = cited_doc_paths()
    assert "docs/references.md" in cited and len(cited["docs/references.md"]) >= 10
    missing = {doc: sorted(set(where))[:3] for doc, where in cited.items()
               if not (ROOT / doc).exists()}
    assert not missing, f"cited but not in the repository: {missing}"


def test_nothing_cites_documents_outside_the_repository():
    offenders = [str(path.relative_to(ROOT)) for path in repository_text_files()
                 if OUTSIDE.search(path.read_text(encoding="utf-8", errors="replace"))]
    assert not offenders, f"cite docs/references.md instead of REFERENCE.md / DESIGN.md: " \
                          f"{offenders}"
