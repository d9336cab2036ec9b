"""Connecting to RabbitMQ: RABBITMQ_URL names one node, or several nodes of a cluster separated
by commas (`amqp://u:p@rabbit-0:5672/,amqp://u:p@rabbit-1:5672/`).

pika tries the nodes in turn until one accepts. Each process starts at a random node, so a
fleet that loses a node spreads over the others instead of all reconnecting to the first.
"""

import random
from typing import Any

import pika


def broker_urls(value: str) -> list[str]:
    """The node URLs of a RABBITMQ_URL, in the order given."""
    return [url.strip() for url in value.split(",") if url.strip()]


def connection_parameters(value: str, **settings: Any) -> list[pika.URLParameters]:
    """One `pika.URLParameters` per node, from a random starting node; `settings` set on each
    (heartbeat, blocked_connection_timeout, client_properties...)."""
    urls = broker_urls(value)
    start = random.randrange(len(urls))  # noqa: S311 (spreading load, not security)
    parameters = []
    for url in urls[start:] + urls[:start]:
        node = pika.URLParameters(url)
        for name, setting in settings.items():
            setattr(node, name, setting)
        parameters.append(node)
    return parameters


def connect(value: str, **settings: Any) -> pika.BlockingConnection:
    """A blocking connection to the first node of RABBITMQ_URL that accepts it."""
    return pika.BlockingConnection(connection_parameters(value, **settings))
