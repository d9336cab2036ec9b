"""CPU per send inside one web process: the figure the api_send target depends on.

    python bench/profiles/send_cpu.py [--sends 2000] [--profile out.html]
    python bench/profiles/send_cpu.py --batch --sends 50     # api_batch's batches of 100 messages
    python bench/profiles/send_cpu.py --attachment --sends 30  # api_send_attachment's 1 MiB sends

Runs the bench's send (a template and 10 recipients, token auth), or with `--batch` the
api_batch scenario's POST of 100 one-recipient template messages, or with `--attachment`
api_send_attachment's send with 1 MiB attached, through Django's WSGI
handler in this process (no test client), against its own database (emailsystem_sendcpu,
created and migrated here) and RabbitMQ, with the dispatcher thread publishing as in
production. With `--batch` the figure is per message. `time.process_time()` covers every thread, so the
figure includes the dispatcher's share. Far less noisy than throughput on a shared machine,
because it counts CPU, not wall time. `--profile` writes a pyinstrument report of the
request thread (text when the name ends in .txt, else HTML).
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.run import environment


def prepare() -> dict:
    """Create the database if needed, migrate, and make the sender, its token and the template."""
    from django.core.management import call_command
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from emailsystem.emails.models import EmailTemplate
    from emailsystem.users.models import User
    from emailsystem.users.services import user_email_verified_set

    database = connections["default"].settings_dict["NAME"]
    with connections["default"]._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{database}"')
    call_command("migrate", "--noinput", verbosity=0)
    user, _ = User.objects.get_or_create(
        email="send-cpu@example.com", defaults={"username": "send-cpu", "daily_quota": 2_000_000_000}
    )
    # As bench/scenarios/common.py: only a verified address sends From itself.
    user_email_verified_set(user=user, verified=True)
    template, _ = EmailTemplate.objects.get_or_create(
        name="bench-welcome",
        defaults={"subject": "Hello {{ name }}", "body": "Hi {{ name }}.", "html_body": "<p>Hi {{ name }}</p>"},
    )
    return {"token": Token.objects.get_or_create(user=user)[0].key, "template_id": template.pk}


def purge_work_queue() -> None:
    """Drop the messages published here: nothing will ever send them."""
    import pika

    from emailsystem.emails.delivery.config import sender_settings

    config = sender_settings()
    assert config.rabbitmq_url, "the profile publishes to RabbitMQ (RABBITMQ_URL)"
    connection = pika.BlockingConnection(pika.URLParameters(config.rabbitmq_url))
    try:
        connection.channel().queue_purge(f"{config.queue_prefix}.send")
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=2000, help="requests to time")
    parser.add_argument("--batch", action="store_true", help="POST api_batch's batches instead of single sends")
    parser.add_argument("--attachment", action="store_true", help="POST api_send_attachment's 1 MiB sends")
    parser.add_argument("--profile", help="write a pyinstrument report of the request thread here (.txt or .html)")
    args = parser.parse_args()

    env = environment()
    env["DATABASE_URL"] = os.environ.get(
        "SEND_CPU_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emailsystem_sendcpu"
    )
    # Queues of its own, purged at the end: no sender drains them, and the bench's must stay empty.
    env["QUEUE_PREFIX"] = "sendcpu"
    os.environ.update(env)
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from bench import scenarios
    from bench.scenarios.batch import BATCH_SIZE, batch_payload
    from bench.scenarios.fields import attachment_payload
    from emailsystem.emails.delivery.dispatcher import dispatcher

    context = prepare()
    application = WSGIHandler()
    if args.batch:
        path, payload, per_request = "/api/v1/emails/batch/", batch_payload(context), BATCH_SIZE
    elif args.attachment:
        path, payload, per_request = "/api/v1/emails/sent-email/", attachment_payload(), 1
    else:
        path, payload, per_request = "/api/v1/emails/sent-email/", scenarios.send_payload(context), 1
    body = json.dumps(payload).encode()

    def send() -> None:
        # The environ gunicorn would build, without the test client's instrumentation.
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {context['token']}",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        statuses: list[str] = []
        # Django never calls the write() that start_response returns; this one returns None.
        response = application(environ, lambda status, headers: statuses.append(status))  # type: ignore[arg-type]
        b"".join(response)
        response.close()
        assert statuses[0].startswith("202"), statuses

    for _ in range(max(1, (10 if args.attachment else 200) // per_request)):  # warm caches, connections, dispatcher
        send()
    dispatcher().flush()

    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    cpu, wall = time.process_time(), time.perf_counter()
    answered = []  # each request's own time, until its answer (the dispatcher publishes after it)
    for _ in range(args.sends):
        started = time.perf_counter()
        send()
        answered.append(time.perf_counter() - started)
    dispatcher().flush()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    purge_work_queue()
    if profiler is not None:
        profiler.stop()
        report = profiler.output_text(color=False) if args.profile.endswith(".txt") else profiler.output_html()
        Path(args.profile).write_text(report)
    per_send = 1000 / (args.sends * per_request)
    unit = "message" if args.batch else "send"
    print(f"{args.sends} requests: {cpu * per_send:.3f} ms CPU and {wall * per_send:.3f} ms wall per {unit}")
    print(f"  a request's answer took {statistics.median(answered) * 1000:.1f} ms (median)")


if __name__ == "__main__":
    main()
