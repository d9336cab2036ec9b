"""Load generators: wrk for HTTP throughput and latency, small Python clients for the rest."""

import json
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# How often wrk(until=...) asks whether to stop.
UNTIL_POLL_SECONDS = 0.5
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers plus socket errors


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, f"not a wrk duration: {text!r}"
    number, unit = match.groups()
    return float(number) * UNITS_MS[unit]


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int = 8,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    until: Callable[[], bool] | None = None,
) -> WrkResult:
    """Run wrk against `url` for `seconds` (two threads: the machine has two cores), or, with `until`,
    until it returns true (polled every UNTIL_POLL_SECONDS) with `seconds` as the limit: wrk stops on
    SIGINT and reports the requests made so far."""
    script = [f'wrk.method = "{method}"']
    for name, value in (headers or {}).items():
        script.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        script.append(f"wrk.body = {json.dumps(body)}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write("\n".join(script) + "\n")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua.name, url]
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
            deadline = time.monotonic() + seconds
            while until is not None and process.poll() is None and time.monotonic() < deadline:
                if until():
                    process.send_signal(signal.SIGINT)
                    break
                time.sleep(UNTIL_POLL_SECONDS)
            try:
                output, stderr = process.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                process.kill()  # as subprocess.run does, so that leaving the block does not wait for it
                raise
        if process.returncode != 0:
            raise subprocess.CalledProcessError(process.returncode, command, output, stderr)
    finally:
        Path(lua.name).unlink()
    # wrk pads a figure of a second or more with a space: "99%    1.29s ".
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    requests_line = re.search(r"(\d+) requests in", output)
    rps_line = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert requests_line and rps_line, output
    requests = int(requests_line.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return WrkResult(
        rps=float(rps_line.group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=requests,
        errors=errors,
    )


def post_json(url: str, payload: dict, token: str, timeout: float = 30) -> tuple[int, dict, float]:
    """(status, answer, milliseconds) of one POST."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
        answer = json.loads(response.read())
        return response.status, answer, (time.perf_counter() - started) * 1000


def get_json(url: str, timeout: float = 30, token: str | None = None) -> dict:
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
        return json.loads(response.read())


def paced_sends(url: str, payload: dict, token: str, *, rate: float, seconds: float) -> dict[int, float]:
    """POST at a fixed rate (open loop: a slow answer does not delay the next send).

    Returns {email id: wall-clock time the POST started}.
    """
    started: dict[int, float] = {}
    lock = threading.Lock()

    def one() -> None:
        at = time.time()
        status, answer, _ = post_json(url, payload, token)
        if status == 202:
            with lock:
                started[answer["id"]] = at

    threads = []
    begin = time.monotonic()
    for n in range(int(rate * seconds)):
        delay = begin + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=60)
    return started
