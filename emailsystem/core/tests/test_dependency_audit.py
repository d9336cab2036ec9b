"""`make audit` (scripts/audit.py): how pip-audit's report and the ignore list become an exit status.

The audit itself needs PyPI's vulnerability API and runs in CI (`.ci/run`), not here.
"""

import pytest

from scripts.audit import (
    BAD_IGNORE_LIST,
    CLEAN,
    IGNORE_FILE,
    NOT_AUDITED,
    VULNERABLE,
    IgnoreListError,
    ignored_ids,
    verdict,
)

AUDITED = {"name": "django", "version": "5.2.19", "vulns": []}
VULN = {
    "name": "sqlparse",
    "version": "0.4.0",
    "vulns": [{"id": "GHSA-rrm6-wvj7-cwh2", "fix_versions": ["0.4.4"], "aliases": [], "description": "x"}],
}
SKIPPED = {"name": "pika", "skip_reason": "Dependency not found on PyPI and could not be audited: pika (1.4.4)"}


def test_the_committed_ignore_list_is_well_formed():
    assert isinstance(ignored_ids(IGNORE_FILE.read_text()), dict)


def test_an_ignore_entry_needs_a_date_and_a_reason():
    entries = "# comment\n\nPYSEC-2024-1 2026-11-22 only the XML parser, unused here\n"

    assert ignored_ids(entries) == {"PYSEC-2024-1": "2026-11-22 only the XML parser, unused here"}
    for bad in ("PYSEC-2024-1", "PYSEC-2024-1 2026-11-22", "PYSEC-2024-1 yesterday reason", "X 2026-13-40 why"):
        with pytest.raises(IgnoreListError, match="line 1"):
            ignored_ids(bad)
    assert BAD_IGNORE_LIST == 2


def test_a_clean_report_passes():
    status, lines = verdict({"dependencies": [AUDITED]}, "", allow_unreachable=False)

    assert status == CLEAN
    assert lines == ["dependency audit: 1 packages, no known vulnerabilities"]


@pytest.mark.parametrize("allow_unreachable", [False, True])
def test_a_vulnerability_fails_whatever_the_network(allow_unreachable):
    status, lines = verdict({"dependencies": [AUDITED, VULN, SKIPPED]}, "", allow_unreachable=allow_unreachable)

    assert status == VULNERABLE
    assert "VULNERABLE sqlparse 0.4.0: GHSA-rrm6-wvj7-cwh2 (fixed in 0.4.4)" in lines


def test_a_package_that_could_not_be_audited_fails_unless_allowed_and_is_always_listed():
    report = {"dependencies": [AUDITED, SKIPPED]}

    strict, strict_lines = verdict(report, "", allow_unreachable=False)
    tolerant, tolerant_lines = verdict(report, "", allow_unreachable=True)

    assert (strict, tolerant) == (NOT_AUDITED, CLEAN)
    assert strict_lines == tolerant_lines
    assert any("NOT audited" in line for line in tolerant_lines)
    assert any(line.strip().startswith("pika:") for line in tolerant_lines)


def test_no_report_at_all_is_not_a_pass():
    status, lines = verdict(
        None, "ConnectionError: Could not connect to PyPI's vulnerability feed", allow_unreachable=False
    )

    assert status == NOT_AUDITED
    assert "NOT DONE" in lines[0] and "Could not connect" in lines[1]


def test_without_a_report_only_a_network_failure_is_tolerated():
    unreachable = "pip_audit._service.interface.ConnectionError: Could not connect to PyPI's vulnerability feed"
    broken = "ResolutionImpossible: no matching distribution for Django==9.9.9"

    assert verdict(None, unreachable, allow_unreachable=True)[0] == CLEAN
    assert verdict(None, broken, allow_unreachable=True)[0] == NOT_AUDITED
