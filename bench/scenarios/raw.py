"""The ceilings the pipeline can approach: the fake SendGrid's HTTP rate and RabbitMQ's
persistent round trip, each alone."""

import threading
import time
from typing import Any

import pika

from bench import loads
from bench.scenarios.common import TEN, rabbitmq_url, topology_prefix


def raw(bench, context: dict[str, Any]) -> None:
    """The fake SendGrid and the broker alone: the ceilings the pipeline can approach."""
    body = (
        '{"personalizations": [' + ",".join(f'{{"to": [{{"email": "{a}"}}]}}' for a in TEN) + "],"
        ' "from": {"email": "bench@example.com"}, "subject": "s", "content": [{"type": "text/plain", "value": "b"}]}'
    )

    def once() -> None:
        result = loads.wrk(
            f"{context['fake']}/v3/mail/send",
            seconds=bench.seconds(5),
            method="POST",
            body=body,
            headers={"Authorization": "Bearer SG.bench", "Content-Type": "application/json"},
        )
        loads.post_json(f"{context['fake']}/_fake/reset", {}, token="")
        bench.record("raw_fake_http_rps", result.rps)
        bench.record("raw_amqp_msgs_per_s", amqp_round_trip(20_000 if not bench.quick else 5_000))

    bench.repeat("raw", once)


def amqp_round_trip(count: int) -> float:
    """Persistent messages published with confirms and consumed with acks, on a scratch queue: msgs/s."""
    url = rabbitmq_url()
    queue = f"{topology_prefix()}.raw-probe"
    body = b"x" * 1024
    consumer = pika.BlockingConnection(pika.URLParameters(url))
    channel = consumer.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_purge(queue=queue)

    def produce() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        producer = connection.channel()
        producer.confirm_delivery()
        for _ in range(count):
            producer.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
        connection.close()

    started = time.perf_counter()
    thread = threading.Thread(target=produce)
    thread.start()
    received = 0
    channel.basic_qos(prefetch_count=500)
    for method, _, _ in channel.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        received += 1
        if received % 250 == 0 or received == count:
            assert method.delivery_tag is not None  # the broker numbers every delivery
            channel.basic_ack(method.delivery_tag, multiple=True)
        if received == count:
            break
    elapsed = time.perf_counter() - started
    channel.cancel()
    thread.join()
    channel.queue_delete(queue=queue)
    consumer.close()
    if received != count:
        raise RuntimeError(f"raw AMQP probe received {received} of {count}")
    return count / elapsed
