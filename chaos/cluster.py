"""A private three-node RabbitMQ cluster on local ports, for `broker_node_kill`.

Each node is a PrivateRabbitMQ (chaos/servers.py) with its own name, ports, data and logs; they
share one Erlang cookie. The first node starts alone, the others start, stop their app, join
it (`rabbitmqctl join_cluster`) and start again. The stack then declares its queues with all
three nodes up, so every quorum queue has a member on each node.
"""

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from chaos.servers import PrivateRabbitMQ
from emailsender import brokers

NODES = 3
# A quorum queue elects a new leader within a few seconds of losing the old one (Raft election
# timeouts); this bounds the wait for every queue to have a live leader again.
LEADER_WAIT_SECONDS = 60


class PrivateRabbitCluster:
    """Three PrivateRabbitMQ nodes joined into one cluster; `url` names them all, comma separated."""

    def __init__(self, base: Path, name: str = "cluster", nodes: int = NODES) -> None:
        cookie = os.urandom(20).hex().upper()
        self.nodes = [PrivateRabbitMQ(base, name=f"{name}-{n}", cookie=cookie) for n in range(nodes)]
        self.url = ",".join(node.url for node in self.nodes)

    def start(self) -> None:
        first, *others = self.nodes
        first.start()
        for node in others:
            node.start()
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
            node.wait_until_answers()
        running = self.running_nodes()
        if running != {node.node for node in self.nodes}:
            raise RuntimeError(f"the cluster formed with {sorted(running)}, not all {len(self.nodes)} nodes")

    def stop(self) -> None:
        """Stop every node, the joined ones first (the first node may be the last to know the cluster)."""
        for node in reversed(self.nodes):
            node.stop()

    def live(self) -> PrivateRabbitMQ:
        """A node whose process runs and answers AMQP, for CLI questions."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None and node.answers():
                return node
        raise RuntimeError("no node of the private cluster answers")

    def running_nodes(self) -> set[str]:
        """The nodes the cluster counts as running, as a live node sees it."""
        status = self.live().ctl("cluster_status", "--formatter", "json")
        return set(_running_nodes(status))

    def leaders(self) -> dict[str, str]:
        """Queue name -> the node that leads it (quorum queues), as a live node sees it."""
        return _leaders(self.live().ctl("list_queues", "name", "leader", "--no-table-headers", "--quiet"))

    def node_named(self, name: str) -> PrivateRabbitMQ:
        return next(node for node in self.nodes if node.node == name)

    def wait_for_leaders(self, queues: list[str], excluding: str) -> float:
        """Wait until every queue in `queues` has a leader other than `excluding`; the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                leaders = self.leaders()
            except (subprocess.SubprocessError, RuntimeError):
                leaders = {}
            if all(leaders.get(queue) not in (None, "", excluding) for queue in queues):
                return time.monotonic() - started
            if time.monotonic() - started > LEADER_WAIT_SECONDS:
                raise RuntimeError(f"no new leader within {LEADER_WAIT_SECONDS}s: {leaders}")
            time.sleep(0.5)

    def queue_depth(self, queue: str) -> int:
        return self._queue(queue).message_count

    def queue_consumers(self, queue: str) -> int:
        return self._queue(queue).consumer_count

    def answers(self) -> bool:
        try:
            self.live()
        except RuntimeError:
            return False
        return True

    def _queue(self, queue: str) -> Any:  # pika's Queue.DeclareOk frame
        connection = brokers.connect(self.url, connection_attempts=1, socket_timeout=2)
        try:
            return connection.channel().queue_declare(queue=queue, passive=True).method
        finally:
            if connection.is_open:
                connection.close()


def _running_nodes(status_json: str) -> list[str]:
    """`running_nodes` of `rabbitmqctl cluster_status --formatter json` (read with a pattern:
    the tool prints warnings before the JSON on some versions)."""
    match = re.search(r'"running_nodes"\s*:\s*\[([^\]]*)\]', status_json)
    if match is None:
        return []
    return re.findall(r'"([^"]+)"', match.group(1))


def _leaders(list_queues_output: str) -> dict[str, str]:
    """Queue -> leader from `rabbitmqctl list_queues name leader` (tab separated; a classic queue
    has no leader and is left out)."""
    leaders = {}
    for line in list_queues_output.splitlines():
        parts = line.split()
        if len(parts) == 2:
            leaders[parts[0]] = parts[1]
    return leaders
