"""The README's API examples, run as written against a live development server.

Each `# -> 201 {...}` line under a command states the HTTP status and the start of the
answer; "..." stands for any text. A README example that stops working fails this test.
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXPECTATION = re.compile(r"^# -> (\d{3}) (.*)$")

# Records each curl's status and body, so the expectation lines can be checked after it.
HARNESS = r"""
set -euo pipefail
__dir=$(mktemp -d)
curl() { command curl "$@" -o "$__dir/body" -w '%{http_code}' > "$__dir/status"; cat "$__dir/body"; }
__check() {
  local expected_status=$1 expected_body=$2 status body
  status=$(cat "$__dir/status"); body=$(cat "$__dir/body")
  if [ "$status" != "$expected_status" ]; then
    echo "README example answered $status, not $expected_status: $body" >&2; exit 1
  fi
  python3 - "$body" "$expected_body" <<'PY'
import sys
body, expected = sys.argv[1], sys.argv[2]
position = 0
for fragment in expected.split("..."):
    found = body.find(fragment, position)
    if found < 0:
        sys.exit(f"README example answered {body!r}, expected {expected!r} (missing {fragment!r})")
    position = found + len(fragment)
PY
}
"""


def readme_script(base_url: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- readme-examples:start -->", 1)[1].split("<!-- readme-examples:end -->", 1)[0]
    lines = block.strip().splitlines()[1:-1]  # drop the code fences
    out = []
    for line in lines:
        match = EXPECTATION.match(line)
        if match:
            status, body = match.groups()
            out.append(f"__check {status} {shell_quote(body)}")
        else:
            out.append(line.replace("http://127.0.0.1:8000", base_url))
    return HARNESS + "\n".join(out) + "\n"


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_every_readme_example_works_as_written(dev_server):
    base_url, workdir = dev_server
    script = readme_script(base_url)
    assert script.count("__check ") >= 15, "the README examples lost their expectations"

    result = subprocess.run(
        ["bash", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr[-2000:]
    # make run delivers in-process and, without a SendGrid key, writes .eml files instead.
    written = [path.read_text(errors="replace") for path in (workdir / "outbox").rglob("*.eml")]
    assert len(written) == 4, "3 recipients of the template send and 1 of the ad hoc send"
    assert sum("Hello Ada" in eml and "erin@example.com" in eml for eml in written) == 1
