"""Reading the private cluster's state from rabbitmqctl's output (chaos/cluster.py)."""

from chaos.cluster import _leaders, _running_nodes


def test_leaders_are_read_per_queue_and_queues_without_one_left_out():
    output = "chaos.send\tchaos-1-broker-1-0@localhost\nchaos.results\tchaos-1-broker-1-2@localhost\nold.classic\t\n"

    assert _leaders(output) == {
        "chaos.send": "chaos-1-broker-1-0@localhost",
        "chaos.results": "chaos-1-broker-1-2@localhost",
    }


def test_running_nodes_are_read_from_the_json_status_even_after_a_warning_line():
    status = 'Warning: something\n{"disk_nodes":["a@localhost","b@localhost"],"running_nodes":["a@localhost"]}'

    assert _running_nodes(status) == ["a@localhost"]
    assert _running_nodes("not json") == []
