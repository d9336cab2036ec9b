"""Relative links in the Markdown files outside docs/ lead somewhere: the file exists, and an #anchor names a heading.

docs/ is checked by `mkdocs build --strict` (make lint). These files are read on GitHub and in a checkout, where
nothing else checks them, so anchors are GitHub's heading slugs.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHECKED = sorted(
    path.relative_to(ROOT).as_posix()
    for path in [
        ROOT / "README.md",
        ROOT / "emailsender" / "README.md",
        ROOT / "manifests" / "README.md",
        ROOT / "chaos" / "README.md",
        *ROOT.glob("bench/**/README.md"),
    ]
    if path.exists()
)
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
EXPLICIT_ID = re.compile(r"\s*\{#([\w-]+)\}$")
# [text](target) or [text](target "title"); images too.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`[^`]*`")
# http:, https:, mailto: and any other scheme: not a file of this repository.
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The id GitHub gives a heading: its text, lowercased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        explicit = EXPLICIT_ID.search(match[2])
        if explicit:
            found.add(explicit[1])
            continue
        slug = github_slug(match[2])
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)  # GitHub numbers repeated headings
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(path: Path) -> list[str]:
    """Each relative link of a Markdown file whose file, or heading, does not exist."""
    problems = []
    for number, line in prose(path.read_text()):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            destination = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.name}:{number}: {target}"
            if not destination.exists():
                problems.append(f"{where} (no such file)")
            elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                problems.append(f"{where} (no heading #{anchor} in {destination.name})")
    return problems


@pytest.mark.parametrize("name", CHECKED)
def test_every_relative_link_leads_to_an_existing_file_and_heading(name):
    assert broken_links(ROOT / name) == []


def test_the_readme_links_into_the_docs_and_is_checked():
    assert "README.md" in CHECKED
    readme = (ROOT / "README.md").read_text()
    assert len([t for _, line in prose(readme) for t in LINK.findall(line) if t.startswith("docs/")]) >= 20


def test_a_missing_file_or_heading_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Known `heading`: here\n\n```\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#known-heading-here) [also fine](#page) [web](https://example.com/x.md)\n"
        "[gone](missing.md) [no heading](other.md#not-a-heading) `[in code](missing-too.md)`\n"
        "```\n[in a block](missing-too.md)\n```\n"
    )

    assert broken_links(page) == [
        "page.md:4: missing.md (no such file)",
        "page.md:4: other.md#not-a-heading (no heading #not-a-heading in other.md)",
    ]
