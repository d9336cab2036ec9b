"""MkDocs hook: the README's curl session, shown in Getting started where the page says `<!-- readme-examples -->`.

The session lives once, in README.md between its `readme-examples` markers, where
`emailsystem/core/tests/test_readme.py` runs it as written; the site shows that same text.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

PLACEHOLDER = "<!-- readme-examples -->"
START, END = "<!-- readme-examples:start -->", "<!-- readme-examples:end -->"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    readme = (Path(config.config_file_path).parent / "README.md").read_text()
    if START not in readme or END not in readme:
        raise PluginError(f"README.md lost its {START} and {END} markers, which {page.file.src_uri} shows")
    return markdown.replace(PLACEHOLDER, readme.split(START, 1)[1].split(END, 1)[0].strip())
