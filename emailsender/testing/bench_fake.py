"""Measure how many mail/send requests per second a running fake SendGrid answers.

    python -m emailsender.testing.fake_sendgrid --port 8025 --no-bodies &
    python -m emailsender.testing.bench_fake --url http://127.0.0.1:8025 --seconds 5 --threads 16 [--new-connections]

`--new-connections` opens a TCP connection per request, as the sendgrid library (urllib) does;
without it each thread keeps one HTTP/1.1 connection alive. Run it in another process than the
fake so the two do not share one interpreter lock.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from urllib.parse import urlsplit


def _payload(n: int) -> bytes:
    return json.dumps(
        {
            "personalizations": [
                {"to": [{"email": f"user{n}@example.com"}], "custom_args": {"delivery_id": str(n), "email_id": "1"}}
            ],
            "from": {"email": "bench@example.com"},
            "subject": "benchmark",
            "content": [{"type": "text/plain", "value": "hello"}],
        }
    ).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emailsender.testing.bench_fake", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", default="http://127.0.0.1:8025")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--new-connections", action="store_true", help="one TCP connection per request")
    args = parser.parse_args(argv)

    target = urlsplit(args.url)
    deadline = time.monotonic() + args.seconds
    counts = [0] * args.threads
    errors = [0] * args.threads
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}

    def worker(index: int) -> None:
        connection = None
        n = index * 10_000_000
        while time.monotonic() < deadline:
            n += 1
            if connection is None:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            try:
                connection.request("POST", "/v3/mail/send", body=_payload(n), headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status == 202:
                    counts[index] += 1
                else:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                connection.close()
                connection = None
                continue
            if args.new_connections:
                connection.close()
                connection = None

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    mode = "new connection per request" if args.new_connections else "keep-alive"
    print(
        f"{sum(counts)} accepted, {sum(errors)} errors in {elapsed:.1f}s with {args.threads} threads ({mode}): "
        f"{sum(counts) / elapsed:.0f} requests/s"
    )
    return 0 if sum(errors) == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
