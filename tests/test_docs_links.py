"""Every relative link in README.md and docs/**/*.md leads somewhere, and the README stays short.

A link is ``[text](target)`` outside fenced code blocks and inline code spans. External targets
(``https://``, ``mailto:``, ...) are not followed. For a relative target:
    path      resolved against the linking file's folder; must be an existing file or folder
    #anchor   into a markdown file (or the file itself): a heading's GitHub slug or an explicit
              ``<a id="...">`` / ``<a name="...">`` in that file

GitHub's slug rule (:func:`slug`): the heading's text lower-cased, every character other than a
letter, digit, space, '-' or '_' dropped, each space turned into '-'; a repeated slug gets '-1',
'-2', ... in order of appearance.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 10_000  # bytes: issue 29, "a README read in five minutes"

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def strip_code(text: str) -> str:
    """The text without fenced blocks; inline code spans become the placeholder ``code`` so that a
    link whose text is code (``[`data.md`](data.md)``) is still a link."""
    text = FENCE.sub("", text)
    return CODE_SPAN.sub("code", text)


def links(text: str) -> list[str]:
    """Link targets of a markdown text, in order."""
    return LINK.findall(strip_code(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (markup characters count as punctuation)."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a markdown text defines: heading slugs (duplicates numbered) and HTML anchors."""
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(source: Path, root: Path = ROOT) -> list[str]:
    """The links of one markdown file that do not resolve, each as ``file: target (why)``."""
    problems = []
    text = source.read_text(encoding="utf-8")
    for target in links(text):
        if EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (source.parent / unquote(path_part)).resolve() if path_part else source
        name = f"{source.relative_to(root)}: {target}"
        try:
            rel = dest.relative_to(root).as_posix()
        except ValueError:
            problems.append(f"{name} (outside the repository)")
            continue
        if not dest.exists():
            problems.append(f"{name} (no such file)")
            continue
        if anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{name} (no heading or anchor '{anchor}')")
    return problems


def test_readme_under_limit():
    size = (ROOT / "README.md").stat().st_size
    assert size < README_LIMIT, f"README.md is {size} bytes; move detail into docs/"


@pytest.mark.parametrize("source", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(source):
    assert broken_links(source) == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / unquote(t.partition("#")[0])).resolve()
              for t in links((ROOT / "README.md").read_text()) if not EXTERNAL.match(t)}
    pages = {p.resolve() for p in (ROOT / "docs").rglob("*.md")}
    assert sorted(p.relative_to(ROOT).as_posix() for p in pages - linked) == []


def test_slug_follows_github():
    assert slug("Sweeps: `pss-bench sweep`") == "sweeps-pss-bench-sweep"
    assert slug("1.1 Repository, licence, dataset") == "11-repository-licence-dataset"
    assert slug("IAST vs HIAST_defaults") == "iast-vs-hiast_defaults"
    assert anchors("# A\n## A\n<a id=\"x\"></a>\n```\n# not a heading\n```\n") == {"a", "a-1", "x"}


def test_checker_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ok.md").write_text("# Real heading\n")
    page = tmp_path / "README.md"
    page.write_text("[a](docs/ok.md) [b](docs/ok.md#real-heading) [c](docs/missing.md) "
                    "[d](docs/ok.md#no-such) [e](https://example.org/x) `[f](not/a/link.md)`\n"
                    "```\n[g](in/a/fence.md)\n```\n")
    assert broken_links(page, tmp_path) == ["README.md: docs/missing.md (no such file)",
                                            "README.md: docs/ok.md#no-such (no heading or anchor 'no-such')"]
