"""The chaos run's table: printed, and written to chaos/results/latest.{md,json}."""

import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

from chaos.load import KINDS
from chaos.outcome import Outcome

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    ("scenario", "scenario"),
    ("offered", "emails offered"),
    ("accepted", "accepted (202)"),
    ("kinds", "accepted " + "/".join(KINDS)),
    ("recipients", "recipients"),
    ("delivered", "delivered"),
    ("via_smtp", "via SMTP"),
    ("duplicated", "duplicated"),
    ("lost", "lost"),
    ("early", "scheduled early"),
    ("recovery_seconds", "max recovery (s)"),
    ("web_5xx", "web 5xx"),
    ("readyz_503", "readyz 503"),
]


def _cell(outcome: Outcome, key: str) -> str:
    if key == "kinds":
        return "/".join(str(outcome.emails_by_kind.get(kind, 0)) for kind in KINDS)
    return str(getattr(outcome, key))


def table(outcomes: list[Outcome]) -> str:
    header = "| " + " | ".join(title for _key, title in COLUMNS) + " | verdict |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for outcome in outcomes:
        cells = [_cell(outcome, key) for key, _title in COLUMNS]
        lines.append("| " + " | ".join(cells) + f" | {'pass' if outcome.passed else 'FAIL'} |")
    return "\n".join(lines)


def write(outcomes: list[Outcome], settings: dict[str, str], seconds: float, command: str) -> str:
    """Write latest.md and latest.json; return the Markdown."""
    measured = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [
        "# Fault injection: latest run",
        "",
        f"Measured {measured} on {platform.machine()} ({platform.python_version()}), `{command}`, "
        f"{seconds:.0f} s in all.",
        "",
        table(outcomes),
        "",
        "What each scenario did:",
        "",
    ]
    lines += [
        f"- `{o.scenario}`: {o.description}; settled in {o.settle_seconds:.1f} s; "
        f"web answers {o.answers_by_status}; SendGrid answers {o.sendgrid_by_status}; "
        f"{o.scheduled_due_in_fault} scheduled sends came due during the fault"
        + (f"; failover {o.failover}" if o.failover else "")
        + "".join(f"; {note}" for note in o.notes)
        + (f"; outbound webhooks {o.webhooks}" if o.webhooks else "")
        + "."
        for o in outcomes
    ]
    failures = [(o.scenario, line) for o in outcomes for line in o.failures]
    lines += ["", "Failed checks:" if failures else "Every check passed.", ""]
    lines += [f"- `{scenario}`: {line}" for scenario, line in failures]
    lines += ["Stack settings: " + ", ".join(f"`{k}={v}`" for k, v in sorted(settings.items())), ""]
    markdown = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(markdown)
    document = {
        "measured_at": measured,
        "seconds": round(seconds, 1),
        "command": command,
        "settings": settings,
        "scenarios": [{**asdict(o), "passed": o.passed} for o in outcomes],
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    return markdown
