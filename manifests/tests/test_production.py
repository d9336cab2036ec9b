"""overlays/production holds what running past one machine needs.

- The broker and the database run on their operators: a RabbitmqCluster of three nodes, a
  CloudNativePG Cluster of three instances with synchronous replication, and every process
  takes DATABASE_URL and RABBITMQ_URL from the Secrets the operators generate.
- KEDA scales the sender on its work queue, and nothing else scales it.
- Disruption budgets, spread over nodes, and NetworkPolicies that allow exactly the flows the
  processes need (evaluated here on the rendered policies, not just looked at).
- The custom resources name only fields their CRDs define (../shared/crds): the API server
  refuses an unknown field of a custom resource (kubectl's strict field validation), and
  validate_crs.py in `make lint` checks types and required fields but lets unknown ones pass.

The labels the operators put on their pods are in OPERATOR_PODS; docs/deploy/production.md
("What the overlay assumes about the operators") says where each was checked.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_rendering import ROOT, Rendering, containers, kustomization, where

from emailsender.topology import bulk_queue, work_queue
from emailsystem.outbound.topology import webhooks_queue

PRODUCTION = "overlays/production"
# As in check.sh: ../shared/crds beside the checkout (CI), or CRDS_DIR.
CRDS = Path(os.environ.get("CRDS_DIR") or ROOT.parent / "shared" / "crds")
# The operators' namespaces and pod labels as their release manifests install them, and the
# cluster services the policies name (docs/deploy/production.md, "Network policies").
OPERATOR_PODS = {
    "postgres": {"cnpg.io/cluster": "postgres", "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": "primary"},
    "rabbitmq": {
        "app.kubernetes.io/name": "rabbitmq",
        "app.kubernetes.io/component": "rabbitmq",
        "app.kubernetes.io/part-of": "rabbitmq",
    },
}


@pytest.fixture(scope="module")
def production(renderings: dict[str, Rendering]) -> Rendering:
    return renderings[PRODUCTION]


def only(items: list[dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(items) == 1, f"{PRODUCTION}: expected one {what}, found {len(items)}"
    return items[0]


# --- the operators' resources ------------------------------------------------------------------


def test_rabbitmq_runs_three_nodes_on_three_machines(production: Rendering) -> None:
    cluster = only(production.of_kind("rabbitmq.com", "RabbitmqCluster"), "RabbitmqCluster")
    assert cluster["spec"]["replicas"] == 3
    [term] = cluster["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": cluster["metadata"]["name"]}
    assert cluster["spec"]["image"].partition(":")[2].startswith("4."), "quorum queues as designed need RabbitMQ 4"


def test_postgres_runs_three_instances_with_synchronous_replication(production: Rendering) -> None:
    cluster = only(production.of_kind("postgresql.cnpg.io", "Cluster"), "CloudNativePG Cluster")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["method"] in ("any", "first") and synchronous["number"] >= 1
    # A commit waits for a standby even when the standbys are gone: a 202 is never on one node only.
    assert synchronous.get("dataDurability", "required") == "required"
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    assert spec["affinity"]["topologyKey"] == "kubernetes.io/hostname"
    assert spec.get("enablePDB", True), "the operator's own disruption budgets keep a drain off the primary"


def test_database_and_broker_urls_come_from_the_operators_secrets(production: Rendering) -> None:
    postgres = only(production.of_kind("postgresql.cnpg.io", "Cluster"), "CloudNativePG Cluster")["metadata"]["name"]
    rabbitmq = only(production.of_kind("rabbitmq.com", "RabbitmqCluster"), "RabbitmqCluster")["metadata"]["name"]
    expected_refs = {
        "DATABASE_URL": (f"{postgres}-app", "uri"),
        "BROKER_USERNAME": (f"{rabbitmq}-default-user", "username"),
        "BROKER_PASSWORD": (f"{rabbitmq}-default-user", "password"),
        "BROKER_HOST": (f"{rabbitmq}-default-user", "host"),
        "BROKER_PORT": (f"{rabbitmq}-default-user", "port"),
    }
    problems = []
    for workload in production.workloads():
        for container in containers(workload):
            env = {item["name"]: item for item in container.get("env", [])}
            if "RABBITMQ_URL" in env:
                url = env["RABBITMQ_URL"].get("value", "")
                if url != "amqp://$(BROKER_USERNAME):$(BROKER_PASSWORD)@$(BROKER_HOST):$(BROKER_PORT)/":
                    problems.append(f"{where(workload, container)}: RABBITMQ_URL is {env['RABBITMQ_URL']}")
            names = [name for name in expected_refs if name in env]
            if "RABBITMQ_URL" in env:
                names = list(dict.fromkeys([*names, *(name for name in expected_refs if name.startswith("BROKER_"))]))
            for name in names:
                ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
                if (ref.get("name"), ref.get("key")) != expected_refs[name]:
                    problems.append(f"{where(workload, container)}: {name} from {ref or 'no Secret'}")
    assert not problems, "\n  ".join(["not from the operators' Secrets:", *problems])


# --- scaling and disruption ------------------------------------------------------------------


def test_keda_scales_the_webhooks_process_on_its_queue(production: Rendering) -> None:
    scaled = production.by_kind_name[("ScaledObject", "webhooks")]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "webhooks"
    assert scaled["spec"]["minReplicaCount"] >= 2
    [trigger] = scaled["spec"]["triggers"]
    config = production.by_kind_name[("ConfigMap", sender_config_map(production))]["data"]
    assert trigger["metadata"]["queueName"] == webhooks_queue(config["QUEUE_PREFIX"])
    assert (
        trigger["authenticationRef"]
        == production.by_kind_name[("ScaledObject", "sender")]["spec"]["triggers"][0]["authenticationRef"]
    )


def test_keda_scales_the_sender_on_its_work_queue(production: Rendering) -> None:
    scaled = only(
        [item for item in production.of_kind("keda.sh", "ScaledObject") if item["metadata"]["name"] == "sender"],
        "ScaledObject for the sender",
    )
    assert scaled["spec"]["scaleTargetRef"]["name"] == "sender"
    assert not [item for item in production.objects if item["kind"] == "HorizontalPodAutoscaler"], (
        "KEDA owns the sender's HPA; a second autoscaler on the Deployment would fight it"
    )
    assert scaled["spec"]["minReplicaCount"] >= 2, "one sender is a single point of failure"
    trigger, bulk = scaled["spec"]["triggers"]
    assert trigger["type"] == bulk["type"] == "rabbitmq"
    config = production.by_kind_name[("ConfigMap", sender_config_map(production))]["data"]
    assert trigger["metadata"]["queueName"] == work_queue(config["QUEUE_PREFIX"])
    # Both lanes' backlogs scale the senders, on the same broker with the same credentials.
    assert bulk["metadata"]["queueName"] == bulk_queue(config["QUEUE_PREFIX"])
    assert (bulk["metadata"]["host"], bulk["authenticationRef"]) == (
        trigger["metadata"]["host"],
        trigger["authenticationRef"],
    )
    rabbitmq = only(production.of_kind("rabbitmq.com", "RabbitmqCluster"), "RabbitmqCluster")["metadata"]["name"]
    namespace = kustomization(ROOT / "manifests" / PRODUCTION)["namespace"]
    # KEDA runs in its own namespace: the broker's Service needs the namespace in its name.
    assert trigger["metadata"]["host"] == f"amqp://{rabbitmq}.{namespace}.svc:5672/"
    auth = production.by_kind_name[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
    refs = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    assert refs.keys() == {"username", "password"}
    for ref in refs.values():
        assert ref["name"] == f"{rabbitmq}-default-user"
        assert ref["key"] in (production.secret_keys(ref["name"]) or set())


def sender_config_map(rendering: Rendering) -> str:
    [sender] = rendering.component("sender")
    [source] = [
        item for item in sender["spec"]["template"]["spec"]["containers"][0]["envFrom"] if "configMapRef" in item
    ]
    return source["configMapRef"]["name"]


@pytest.mark.parametrize("process", ["web", "sender", "results"])
def test_a_drain_takes_one_replica_at_a_time(production: Rendering, process: str) -> None:
    deployment = production.by_kind_name[("Deployment", process)]
    budget = production.by_kind_name[("PodDisruptionBudget", process)]
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    assert budget["spec"]["maxUnavailable"] == 1
    if process != "sender":  # KEDA sets the sender's count
        assert deployment["spec"]["replicas"] >= 2, f"{process}: one replica cannot survive a node"


@pytest.mark.parametrize("process", ["web", "sender", "results"])
def test_replicas_spread_across_nodes(production: Rendering, process: str) -> None:
    pod = production.by_kind_name[("Deployment", process)]["spec"]["template"]
    labels = pod["metadata"]["labels"]
    by_node = [
        item for item in pod["spec"]["topologySpreadConstraints"] if item["topologyKey"] == "kubernetes.io/hostname"
    ]
    assert by_node, f"{process}: no spread over kubernetes.io/hostname"
    for constraint in by_node:
        # The constraint counts this process's own pods: its selector plus the matchLabelKeys values.
        assert selects(constraint["labelSelector"], labels)
        assert "app.kubernetes.io/name" in constraint.get("matchLabelKeys", []) or (
            constraint["labelSelector"]["matchLabels"].get("app.kubernetes.io/name") == process
        )


# --- network policies --------------------------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against a set of labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace and labels) or an address outside the cluster (ip)."""

    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ip: str | None = None


def peer_matches(peer: dict[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        network = ipaddress.ip_network(block["cidr"])
        if address.version != network.version or address not in network:
            return False
        return not any(address in ipaddress.ip_network(item) for item in block.get("except", []))
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other.namespace}):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), other.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        item.get("protocol", "TCP") == protocol
        and ("port" not in item or item["port"] <= port <= item.get("endPort", item["port"]))
        for item in ports
    )


def allowed(rendering: Rendering, source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """Whether the rendered NetworkPolicies let `source` open a connection to `target`:port."""
    policies = [item for item in rendering.objects if item["kind"] == "NetworkPolicy"]

    def side(direction: str, pod: Endpoint, other: Endpoint) -> bool:
        if pod.namespace is None:
            return True  # outside the cluster: not ours to police
        applicable = [
            item
            for item in policies
            if item["metadata"]["namespace"] == pod.namespace
            and direction in item["spec"].get("policyTypes", ["Ingress"])
            and selects(item["spec"]["podSelector"], pod.labels)
        ]
        if not applicable:
            return True
        peers_key = "to" if direction == "Egress" else "from"
        return any(
            port_matches(rule.get("ports"), port, protocol)
            # A rule without peers allows every peer.
            and (
                peers_key not in rule
                or any(peer_matches(peer, other, item["metadata"]["namespace"]) for peer in rule[peers_key])
            )
            for item in applicable
            for rule in item["spec"].get(direction.lower(), [])
        )

    return side("Egress", source, target) and side("Ingress", target, source)


def endpoints(rendering: Rendering) -> dict[str, Endpoint]:
    namespace = kustomization(ROOT / "manifests" / PRODUCTION)["namespace"]
    found = {
        item["metadata"]["name"]: Endpoint(namespace, item["spec"]["template"]["metadata"]["labels"])
        for item in rendering.workloads()
    }
    found |= {name: Endpoint(namespace, labels) for name, labels in OPERATOR_PODS.items()}
    found |= {
        "dns": Endpoint("kube-system", {"k8s-app": "kube-dns"}),
        "ingress-controller": Endpoint("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
        "prometheus": Endpoint("monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "keda": Endpoint("keda", {"app": "keda-operator"}),
        "cnpg-operator": Endpoint("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"}),
        "elsewhere": Endpoint("default", {"app.kubernetes.io/name": "web"}),
        "sendgrid": Endpoint(ip="203.0.113.10"),  # any public address (TEST-NET-3 stands for one)
        "sendgrid-v6": Endpoint(ip="2001:db8::10"),
        "private": Endpoint(ip="10.1.2.3"),
        "cloud-metadata": Endpoint(ip="169.254.169.254"),
        "api-server": Endpoint(ip="172.18.0.2"),
    }
    return found


ALLOWED = [
    *((process, "postgres", 5432) for process in ("web", "results", "relay", "migrate", "prune")),
    *((process, "rabbitmq", 5672) for process in ("web", "results", "relay", "sender")),
    ("keda", "rabbitmq", 5672),
    ("ingress-controller", "web", 8000),
    ("prometheus", "web", 8000),
    ("prometheus", "sender", 9100),
    ("prometheus", "rabbitmq", 15692),
    ("prometheus", "postgres", 9187),
    ("sender", "sendgrid", 443),
    ("sender", "sendgrid-v6", 443),
    ("postgres", "postgres", 5432),
    ("postgres", "postgres", 8000),
    ("cnpg-operator", "postgres", 8000),
    ("cnpg-operator", "postgres", 5432),
    ("postgres", "api-server", 6443),
    ("rabbitmq", "rabbitmq", 25672),
    ("rabbitmq", "rabbitmq", 4369),
    ("rabbitmq", "rabbitmq", 35672),
    ("rabbitmq", "api-server", 443),
]
DENIED = [
    ("sender", "postgres", 5432),
    ("migrate", "rabbitmq", 5672),
    ("prune", "rabbitmq", 5672),
    ("prune", "sendgrid", 443),
    ("web", "sendgrid", 443),
    ("results", "sendgrid", 443),
    ("sender", "private", 443),
    ("sender", "cloud-metadata", 80),
    ("sender", "cloud-metadata", 443),
    ("sender", "sendgrid", 80),
    ("results", "web", 8000),
    ("ingress-controller", "sender", 9100),
    ("ingress-controller", "rabbitmq", 5672),
    ("prometheus", "postgres", 5432),
    ("elsewhere", "postgres", 5432),
    ("elsewhere", "rabbitmq", 5672),
    ("elsewhere", "web", 8000),
    ("web", "rabbitmq", 15672),
    ("keda", "rabbitmq", 15672),
    ("web", "web", 8000),
]


@pytest.mark.parametrize(("source", "target", "port"), ALLOWED, ids=lambda item: str(item))
def test_network_policies_allow_what_a_process_needs(
    production: Rendering, source: str, target: str, port: int
) -> None:
    found = endpoints(production)
    assert allowed(production, found[source], found[target], port), f"{source} -> {target}:{port} is blocked"


@pytest.mark.parametrize(("source", "target", "port"), DENIED, ids=lambda item: str(item))
def test_network_policies_deny_everything_else(production: Rendering, source: str, target: str, port: int) -> None:
    found = endpoints(production)
    assert not allowed(production, found[source], found[target], port), f"{source} -> {target}:{port} is open"


def test_network_policies_start_from_deny_all_and_let_every_pod_resolve_names(production: Rendering) -> None:
    policies = [item for item in production.objects if item["kind"] == "NetworkPolicy"]
    assert [
        item["metadata"]["name"]
        for item in policies
        if item["spec"]
        == {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
        }
    ], "no default-deny policy (empty podSelector, both directions, no rules)"
    found = endpoints(production)
    for name, pod in found.items():
        if pod.namespace == "emailsystem":
            for protocol in ("UDP", "TCP"):
                assert allowed(production, pod, found["dns"], 53, protocol), f"{name} cannot reach DNS over {protocol}"


def test_every_workload_is_named_by_a_policy_of_its_own(production: Rendering) -> None:
    """Beyond default-deny and DNS, each process has a policy that says what it may do."""
    general = {"default-deny", "dns"}
    policies = [
        item
        for item in production.objects
        if item["kind"] == "NetworkPolicy" and item["metadata"]["name"] not in general
    ]
    for workload in production.workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(selects(item["spec"]["podSelector"], labels) for item in policies), workload["metadata"]["name"]


# --- the custom resources against their CRDs -----------------------------------------------------


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    if not CRDS.is_dir():
        pytest.fail(
            f"{CRDS} not found: the operators' CRD schemas are expected in ../shared/crds beside the "
            "repository's checkout (as in CI); or set CRDS_DIR=/path/to/crds"
        )
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        # libyaml's safe loader when PyYAML has it: the CRDs are 1.5 MB of YAML.
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields of `value` that `schema` does not define (a structural schema's pruning rule)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        if "properties" not in schema:
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                return [found for key, item in value.items() for found in unknown_fields(item, extra, f"{path}.{key}")]
            return []
        found = []
        for key, item in value.items():
            if key in schema["properties"]:
                found += unknown_fields(item, schema["properties"][key], f"{path}.{key}")
            else:
                found.append(f"{path}.{key}")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            found
            for index, item in enumerate(value)
            for found in unknown_fields(item, schema["items"], f"{path}[{index}]")
        ]
    return []


def test_custom_resources_name_only_fields_their_crds_define(production: Rendering) -> None:
    schemas = crd_schemas()
    groups = {api.split("/")[0] for api, _ in schemas}
    custom = [item for item in production.objects if item["apiVersion"].split("/")[0] in groups]
    assert len(custom) >= 4, "RabbitmqCluster, Cluster, ScaledObject and TriggerAuthentication"
    problems = []
    for item in custom:
        schema = schemas.get((item["apiVersion"], item["kind"]))
        if schema is None:
            problems.append(f"{item['kind']}/{item['metadata']['name']}: no CRD for {item['apiVersion']}")
            continue
        problems += [f"{item['kind']}/{item['metadata']['name']}: {path}" for path in unknown_fields(item, schema, "")]
    assert not problems, "fields the CRDs do not define:\n  " + "\n  ".join(problems)
