"""Audit the pinned runtime dependencies for known vulnerabilities with pip-audit.

    make audit                                  # fails on any known vulnerability, or if it cannot tell
    python -m scripts.audit --allow-unreachable # CI on a network without the vulnerability service

Audits requirements.txt (web, results, relay, migrations) and emailsender/requirements.txt
(the sender image), with every transitive dependency resolved as pip would install it.
Vulnerabilities listed in scripts/audit_ignore.txt (id, date, reason) are not counted.

Exit status: 0 every package audited and clean; 1 a known vulnerability; 2 a malformed
ignore list; 3 some package could not be audited (the vulnerability service did not answer
for it), unless --allow-unreachable, which still prints every unaudited package.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = [ROOT / "requirements.txt", ROOT / "emailsender" / "requirements.txt"]
IGNORE_FILE = ROOT / "scripts" / "audit_ignore.txt"
# "<id> <YYYY-MM-DD> <reason>": the reason and the date are required, so an entry can be re-judged.
_IGNORE_LINE = re.compile(r"^(?P<id>\S+)\s+(?P<date>\d{4}-\d{2}-\d{2})\s+(?P<reason>\S.*)$")

CLEAN, VULNERABLE, BAD_IGNORE_LIST, NOT_AUDITED = 0, 1, 2, 3


class IgnoreListError(ValueError):
    pass


@dataclass(frozen=True)
class Findings:
    vulnerable: list[str]  # "package version: id (fix versions)"
    unaudited: list[str]  # "package: why"


def ignored_ids(text: str) -> dict[str, str]:
    """{vulnerability id: "date reason"} from the ignore list; raises IgnoreListError naming the bad line."""
    ids = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _IGNORE_LINE.match(line)
        if not match:
            raise IgnoreListError(f"line {number}: expected '<id> <YYYY-MM-DD> <reason>', got {line!r}")
        try:
            datetime.date.fromisoformat(match["date"])
        except ValueError:
            raise IgnoreListError(f"line {number}: {match['date']!r} is not a date") from None
        ids[match["id"]] = f"{match['date']} {match['reason']}"
    return ids


def findings(report: dict) -> Findings:
    """What pip-audit's JSON report says: vulnerable packages, and packages it could not audit."""
    vulnerable, unaudited = [], []
    for dependency in report.get("dependencies", []):
        if dependency.get("skip_reason"):
            unaudited.append(f"{dependency['name']}: {dependency['skip_reason']}")
            continue
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            vulnerable.append(f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})")
    return Findings(vulnerable, unaudited)


def run_pip_audit(ignore: dict[str, str]) -> tuple[dict | None, str]:
    """pip-audit's JSON report (None when it stopped before writing one) and its stderr."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "--format", "json", "--output", str(output)]
        command += ["--progress-spinner", "off"]
        for path in REQUIREMENTS:
            command += ["--requirement", str(path)]
        for vuln_id in ignore:
            command += ["--ignore-vuln", vuln_id]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
        report = json.loads(output.read_text()) if output.exists() and output.read_text().strip() else None
        return report, result.stderr


def verdict(report: dict | None, stderr: str, *, allow_unreachable: bool) -> tuple[int, list[str]]:
    """The exit status and the lines to print."""
    if report is None:
        lines = ["dependency audit NOT DONE: pip-audit stopped before writing a report:", stderr.strip()[-2000:]]
        # Only a network failure is tolerated; a broken requirements file or resolver error is not.
        unreachable = "connect" in stderr.lower() or "timed out" in stderr.lower()
        return (CLEAN if allow_unreachable and unreachable else NOT_AUDITED), lines
    found = findings(report)
    lines = [f"VULNERABLE {line}" for line in found.vulnerable]
    if found.unaudited:
        lines.append(f"dependency audit INCOMPLETE: {len(found.unaudited)} package(s) NOT audited:")
        lines += [f"  {line}" for line in found.unaudited]
    if found.vulnerable:
        return VULNERABLE, lines
    if found.unaudited:
        return (CLEAN if allow_unreachable else NOT_AUDITED), lines
    audited = len(report.get("dependencies", []))
    return CLEAN, [f"dependency audit: {audited} packages, no known vulnerabilities"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--allow-unreachable",
        action="store_true",
        help="exit 0 when packages could not be audited (they are still listed); vulnerabilities still fail",
    )
    args = parser.parse_args(argv)
    try:
        ignore = ignored_ids(IGNORE_FILE.read_text())
    except IgnoreListError as error:
        print(f"{IGNORE_FILE.relative_to(ROOT)}: {error}", file=sys.stderr)
        return BAD_IGNORE_LIST
    for vuln_id, why in ignore.items():
        print(f"ignoring {vuln_id}: {why}", file=sys.stderr)
    report, stderr = run_pip_audit(ignore)
    status, lines = verdict(report, stderr, allow_unreachable=args.allow_unreachable)
    for line in lines:
        print(line, file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
