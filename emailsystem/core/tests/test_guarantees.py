"""docs/guarantees.md names tests that exist: a renamed or deleted test breaks the promise's proof."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GUARANTEES = ROOT / "docs" / "guarantees.md"
# `path/to/test_x.py::test_name`, or `::test_name` for another test in the last named file.
REFERENCE = re.compile(r"`((?:[\w/]+\.py)?)(?:::(\w+))?`")


def guarantees() -> str:
    return GUARANTEES.read_text()


def references(section: str) -> list[tuple[str, str | None]]:
    found = []
    for line in section.splitlines():
        path = None
        for file, test in REFERENCE.findall(line):
            path = file or path
            if path and (file or test):
                found.append((path, test or None))
    return found


def test_every_test_the_guarantees_name_exists():
    cited = references(guarantees())

    assert len(cited) > 30, "the section or its reference syntax changed"
    missing = [
        f"{path}::{test}" if test else path
        for path, test in cited
        if not (ROOT / path).exists() or (test and not re.search(rf"^def {test}\(", (ROOT / path).read_text(), re.M))
    ]
    assert not missing, f"{GUARANTEES.name} cites tests that do not exist: {missing}"
