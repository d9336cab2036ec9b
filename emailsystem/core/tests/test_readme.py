"""The README's API examples, run as written against a live development server.

Each `# -> {...} 201` line under a command states what the command printed: the start of the
answer's body ("..." stands for any text), then its HTTP status code, which the README's curl
lines print with `-w ' %{http_code}\n'`. A README example that stops working fails this test.
"""

import json
import re
import subprocess
import urllib.request
from pathlib import Path

from emailsystem.core.tests.browser import outbox_dir

ROOT = Path(__file__).resolve().parents[3]
# The walkthrough user's password, as test_browser.py types it.
PASSWORD = "plum-orchard-lantern-7"
EXPECTATION = re.compile(r"^# -> (.*) (\d{3})$")

# Keeps a copy of what each curl printed (curl itself runs exactly as written), so the
# expectation line after it can be checked against the printed body and status code.
HARNESS = r"""
set -euo pipefail
__dir=$(mktemp -d)
curl() { command curl "$@" | tee "$__dir/printed"; }
__check() {
  local expected_body=$1 expected_status=$2 printed
  printed=$(cat "$__dir/printed")
  python3 - "$printed" "$expected_body" "$expected_status" <<'PY'
import sys
printed, expected, expected_status = sys.argv[1:]
body, _, status = printed.rpartition(" ")
if status != expected_status:
    sys.exit(f"README example printed {printed!r}, not the status {expected_status}")
position = 0
for fragment in expected.split("..."):
    found = body.find(fragment, position)
    if found < 0:
        sys.exit(f"README example answered {body!r}, expected {expected!r} (missing {fragment!r})")
    position = found + len(fragment)
PY
}
"""


def readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- readme-examples:start -->", 1)[1].split("<!-- readme-examples:end -->", 1)[0]
    return block.strip().splitlines()[1:-1]  # drop the code fences


def readme_commands() -> list[tuple[str, str | None]]:
    """Each shell command (continuation lines joined) and the expectation line right after it."""
    commands: list[tuple[str, str | None]] = []
    current = ""
    for line in readme_block():
        if current:
            current += "\n" + line
        elif line.startswith("# -> ") and commands:
            commands[-1] = (commands[-1][0], line)
        elif line.strip() and not line.startswith("#"):
            current = line
        if current and not current.endswith("\\") and current.count("'") % 2 == 0 and current.count('"') % 2 == 0:
            commands.append((current, None))
            current = ""
    return commands


def readme_script(base_url: str) -> str:
    out = []
    for line in readme_block():
        match = EXPECTATION.match(line)
        if match:
            body, status = match.groups()
            out.append(f"__check {shell_quote(body)} {status}")
        else:
            out.append(line.replace("http://127.0.0.1:8000", base_url))
    return HARNESS + "\n".join(out) + "\n"


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_every_curl_that_prints_an_answer_prints_its_status_and_states_what_it_printed():
    printing = [(command, expected) for command, expected in readme_commands() if command.startswith("curl ")]

    assert len(printing) >= 15, "the README examples lost their curl lines"
    for command, expected in printing:
        assert command.startswith("curl -s -w ' %{http_code}\\n' "), command
        assert expected is not None and EXPECTATION.match(expected), f"no '# -> <body> <status>' after: {command}"


def api(base_url: str, method: str, path: str, body: dict, token: str | None = None) -> dict:
    request = urllib.request.Request(  # noqa: S310 (the test's own server)
        f"{base_url}/api/v1/{path}", data=json.dumps(body).encode(), method=method
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def browser_walkthrough(base_url: str, admin_password: str) -> None:
    """What the browser walkthrough (docs/getting-started.md) writes, with the values test_browser.py types."""
    api(base_url, "POST", "users/register/", {"email": "ada@example.com", "username": "ada", "password": PASSWORD})
    token = api(base_url, "POST", "users/login/", {"username": "admin@example.com", "password": admin_password})[
        "token"
    ]
    template = {"name": "welcome", "subject": "Hello {{ name }}", "body": "Hi {{ name }}, welcome aboard."}
    template_id = api(base_url, "POST", "emails/email-template/", template, token)["id"]
    send = {"recipients": ["a@example.com", "b@example.com", "c@example.com"], "template": template_id}
    api(base_url, "POST", "emails/sent-email/", {**send, "context": {"name": "Ada"}}, token)


def test_every_readme_example_works_as_written_after_the_browser_walkthrough(dev_server):
    base_url, workdir = dev_server
    browser_walkthrough(base_url, (workdir / "var" / "demo-admin.txt").read_text().strip())
    script = readme_script(base_url)
    assert script.count("__check ") >= 15, "the README examples lost their expectations"

    result = subprocess.run(
        ["bash", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr[-2000:]
    # make run delivers in-process and, without a SendGrid key, writes .eml files instead.
    written = [path.read_text(errors="replace") for path in outbox_dir(workdir).rglob("*.eml")]
    assert len(written) == 3 + 1 + 1 + 4, (
        "the walkthrough's 3 and ada's verification link, then grace's link and the examples' 3 of the template "
        "send and 1 ad hoc"
    )
    assert sum("From: grace@example.com" in eml for eml in written) == 4, "grace's sends go From her verified address"
    assert sum("Thanks, Ada" in eml and "erin@example.com" in eml for eml in written) == 1
