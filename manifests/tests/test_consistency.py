"""The manifests follow the code and the Procfile.

- Every environment variable the processes read is given to the workloads that run them, or
  is in OPTIONAL below with the reason it may be left to its default.
- Every Procfile process is a workload (release: a Job; the others: Deployments) that runs
  the Procfile's command.
- The properties the deployment relies on hold in every overlay: hardened pods, pinned
  images, labels, probes, and a sender grace period longer than its shutdown window.
- The layout keeps its shape: the base names no namespace and holds no stateful service, each
  overlay puts everything in its own namespace, components are Components that an overlay uses,
  nothing is removed with `$patch: delete`, and the Django workers share one pod shape.

The renderings come from manifest_rendering.py (fixtures in conftest.py); tests of the
production overlay's own properties are in test_production.py.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_rendering import MANIFESTS, OVERLAYS, ROOT, Rendering, containers, kustomization, where

from emailsender.settings import Settings
from scripts.devstack import procfile

COMPONENTS = sorted(path for path in (MANIFESTS / "components").iterdir() if path.is_dir())

# Must reach every Django process and the sender from the manifests themselves: without them a
# process refuses to start, or silently does the wrong thing (SQLite, embedded mode, the outbox
# folder instead of SendGrid, localhost-only hosts).
REQUIRED_DJANGO = {
    "DATABASE_URL",
    "RABBITMQ_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
}
REQUIRED_SENDER = {"RABBITMQ_URL", "SENDGRID_API_KEY", "SENDGRID_API_HOST"}

# Read by the code but deliberately left out of the manifests: each default
# (docs/configuration.md) is right for a deployment, and an operator can add the variable to
# base/config/config.env when it is not.
OPTIONAL = {
    "DJANGO_DEBUG",  # 0 by default, which is the only right value outside a developer's machine
    "THROTTLE_AUTH",  # per-IP rate of registrations and log-in attempts
    "THROTTLE_LOGIN_ACCOUNT",  # failed log-ins per account before its cool-off
    "THROTTLE_SENDGRID_WEBHOOK",  # SendGrid webhook requests per source address, 10 a second
    "EMAIL_VERIFICATION_MAX_AGE",  # three days, the life of a mailed verification link
    "SEND_DAILY_QUOTA",  # per-user default; admins set one per user
    "SEND_MAX_RECIPIENTS",  # SendGrid's own limit per request
    "REQUEST_MAX_BYTES",  # 1 MiB holds 1,000 recipients and a generous body
    "TEMPLATE_RENDER_MAX_CHARS",  # a bound on template output, not a deployment choice
    "ATTACHMENTS_MAX_BYTES",  # 10 MiB decoded per send, SendGrid's own request limit leaves room for it
    "BATCH_MAX_MESSAGES",  # 500 messages per batch send
    "BULK_LANE_MIN_RECIPIENTS",  # 100: the size of request that goes to the bulk lane (docs/sender/fairness.md)
    "SEND_AT_MAX_DAYS",  # how far ahead a send may be scheduled, 30 days
    "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE",  # 0 by default, the only right value outside a developer's machine
    "EMAIL_PROVIDERS",  # unset: SendGrid when its key is set, else the .eml folder (docs/configuration.md)
    "SMTP_URL",  # only with the smtp provider; a secret when set (secrets.env)
    "SMTP_TIMEOUT_SECONDS",  # every SMTP command's timeout, with its reason in emailsender/settings.py
    "BREAKER_COOL_DOWN_SECONDS",  # 30 s between an open breaker's probes, with its reason in emailsender/settings.py
    "DATABASE_CONN_MAX_AGE",  # persistent connections, 60 s
    "SENDER_CONCURRENCY",  # tuning knobs of the sender, with reasons in emailsender/settings.py
    "SENDER_PREFETCH",
    "SENDER_BULK_CONCURRENCY",
    "SENDER_BULK_PREFETCH",
    "SENDER_MAX_INFLIGHT_BYTES",
    "SEND_MAX_ATTEMPTS",
    "RETRY_BASE_SECONDS",
    "RETRY_MAX_SECONDS",
    "SENDER_METRICS_HOST",  # all interfaces, so that Prometheus reaches the pod
    "METRICS_TOKEN",  # unset: /metrics answers direct in-cluster connections only (docs/observability.md)
    "PROMETHEUS_MULTIPROC_DIR",  # gunicorn.conf.py makes one in /tmp; web/deployment.yaml names it anyway
}

# How the code reads its environment. Bare calls: the helpers of emailsystem/env.py and
# the local get()/number() of emailsender.settings.Settings.from_env. Attribute calls:
# os.environ.get, os.getenv. Plus os.environ["NAME"].
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_list", "env_rate", "env_seconds_list", "get", "number"}
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


# --- what the code reads ---------------------------------------------------------------------


def _source_files(
    package: str, *, skip_dirs: set[str], skip_files: frozenset[str] | set[str] = frozenset()
) -> Iterator[Path]:
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT / package)
        if skip_dirs.intersection(relative.parts[:-1]) or path.name in skip_files:
            continue
        yield path


def _is_environ(node: ast.expr) -> bool:
    """`os.environ` or a bare `environ`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id == "environ"


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _read_name(node: ast.AST) -> str | None:
    """The variable name if `node` reads the environment, else None."""
    if isinstance(node, ast.Call):
        func = node.func
        helper = isinstance(func, ast.Name) and func.id in ENV_HELPERS
        environ_get = isinstance(func, ast.Attribute) and (
            (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv"
        )
        return _first_string(node) if helper or environ_get else None
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
        key = node.slice
        return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
    return None


def env_reads(paths: Iterator[Path]) -> dict[str, set[str]]:
    """{variable: {"file:line", ...}} for every environment read found in `paths`."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            name = _read_name(node)
            if name and ENV_NAME.match(name):
                found.setdefault(name, set()).add(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    return found


def _merged(*reads: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for item in reads:
        for name, places in item.items():
            merged.setdefault(name, set()).update(places)
    return merged


# The sender image holds emailsender/ only; the Django processes import emailsender too.
SENDER_READS = env_reads(_source_files("emailsender", skip_dirs={"tests", "testing"}))
DJANGO_READS = _merged(
    SENDER_READS,
    env_reads(
        _source_files("emailsystem", skip_dirs={"tests", "migrations"}, skip_files={"test_settings.py", "conftest.py"})
    ),
)


def test_env_extraction_finds_the_settings() -> None:
    """Guards the extraction itself: if the settings stop using the helpers above, fail here."""
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "LOG_LEVEL"} <= DJANGO_READS.keys(), (
        "emailsystem/settings.py reads its environment in a way ENV_HELPERS does not know; update it"
    )
    assert {"RABBITMQ_URL", "SENDGRID_API_KEY", "SENDER_SHUTDOWN_SECONDS"} <= SENDER_READS.keys(), (
        "emailsender/settings.py reads its environment in a way ENV_HELPERS does not know; update it"
    )


def test_optional_list_is_current() -> None:
    stale = sorted(OPTIONAL - DJANGO_READS.keys())
    assert not stale, f"OPTIONAL names variables the code no longer reads: {', '.join(stale)}"
    assert not OPTIONAL & (REQUIRED_DJANGO | REQUIRED_SENDER), "a required variable cannot be optional"


# --- what the manifests give -----------------------------------------------------------------


def provided_env(rendering: Rendering, container: dict[str, Any]) -> set[str]:
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            kind, ref = "ConfigMap", source["configMapRef"]
        else:
            kind, ref = "Secret", source["secretRef"]
        referenced = rendering.by_kind_name.get((kind, ref["name"]), {})
        data = {**referenced.get("data", {}), **referenced.get("stringData", {})}
        names |= {source.get("prefix", "") + key for key in data}
    return names


def test_every_setting_is_provided(rendering: Rendering) -> None:
    roles = {
        "release": (DJANGO_READS, REQUIRED_DJANGO),
        "web": (DJANGO_READS, REQUIRED_DJANGO),
        "results": (DJANGO_READS, REQUIRED_DJANGO),
        "relay": (DJANGO_READS, REQUIRED_DJANGO),
        "prune": (DJANGO_READS, REQUIRED_DJANGO),
        "sender": (SENDER_READS, REQUIRED_SENDER),
    }
    problems = []
    for component, (reads, required) in roles.items():
        for workload in rendering.component(component):
            for container in containers(workload):
                provided = provided_env(rendering, container)
                missing = sorted((reads.keys() - OPTIONAL - provided) | (required - provided))
                problems += [
                    f"{where(workload, container)}: {name} (read at {', '.join(sorted(reads.get(name, {'-'})))})"
                    for name in missing
                ]
    assert not problems, (
        f"{rendering.name}: variables the code reads that the manifests neither provide nor list in OPTIONAL:\n  "
        + "\n  ".join(problems)
    )


def test_env_references_resolve(rendering: Rendering) -> None:
    """Every ConfigMap/Secret a container names exists in the rendering (or an operator makes it), with the key."""
    problems = []
    for workload in rendering.workloads():
        for container in containers(workload):
            refs = [
                (kind, source[ref_field]["name"], None)
                for source in container.get("envFrom", [])
                for kind, ref_field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef"))
                if ref_field in source
            ]
            for item in container.get("env", []):
                value_from = item.get("valueFrom", {})
                for kind, ref_field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if ref_field in value_from and not value_from[ref_field].get("optional"):
                        refs.append((kind, value_from[ref_field]["name"], value_from[ref_field]["key"]))
            for kind, name, key in refs:
                if kind == "Secret":
                    # A Secret of this rendering, or one an operator generates for its custom resource.
                    keys = rendering.secret_keys(name)
                else:
                    referenced = rendering.by_kind_name.get((kind, name))
                    keys = None if referenced is None else set(referenced.get("data", {}))
                if keys is None:
                    problems.append(f"{where(workload, container)}: no {kind} {name}")
                elif key is not None and key not in keys:
                    problems.append(f"{where(workload, container)}: {kind} {name} has no key {key}")
    assert not problems, f"{rendering.name}:\n  " + "\n  ".join(problems)


def test_env_compositions_refer_to_earlier_variables(rendering: Rendering) -> None:
    """`$(NAME)` in an env value resolves only to NAME from envFrom or an earlier env entry.

    Kubernetes leaves any other reference as literal text: RABBITMQ_URL would carry "$(BROKER_PASSWORD)".
    """
    problems = []
    for workload in rendering.workloads():
        for container in containers(workload):
            defined = set(provided_env(rendering, {"envFrom": container.get("envFrom", [])}))
            for item in container.get("env", []):
                missing = set(KUBERNETES_VARIABLE.findall(item.get("value", ""))) - defined
                if missing:
                    problems.append(
                        f"{where(workload, container)}: {item['name']} uses {sorted(missing)} before they are set"
                    )
                defined.add(item["name"])
    assert not problems, f"{rendering.name}:\n  " + "\n  ".join(problems)


# --- the Procfile ----------------------------------------------------------------------------


# ${NAME:-default}, ${NAME} and $NAME in the Procfile are $(NAME) in a Kubernetes command.
SHELL_VARIABLE = re.compile(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)")
KUBERNETES_VARIABLE = re.compile(r"\$\((\w+)\)")


@pytest.mark.parametrize("process", sorted(procfile()))
def test_procfile_process_runs_as_a_workload(renderings: dict[str, Rendering], process: str) -> None:
    command = procfile()[process]
    expected_kind = "Job" if process == "release" else "Deployment"
    expected = [SHELL_VARIABLE.sub(lambda m: f"$({m.group(1) or m.group(2)})", part) for part in shlex.split(command)]
    for rendering in renderings.values():
        workloads = rendering.component(process)
        assert [item["kind"] for item in workloads] == [expected_kind], (
            f"{rendering.name}: Procfile process {process!r} needs exactly one {expected_kind} whose pods carry "
            f"app.kubernetes.io/component={process}; found {[item['kind'] for item in workloads]}"
        )
        container = workloads[0]["spec"]["template"]["spec"]["containers"][0]
        actual = [*container.get("command", []), *container.get("args", [])]
        if actual[:2] == ["sh", "-c"] and len(actual) == 3:
            assert actual[2] in (command, f"exec {command}"), f"{rendering.name}: {process} runs {actual[2]!r}"
            continue
        assert actual == expected, (
            f"{rendering.name}: {process} runs {shlex.join(actual)!r}, the Procfile says {command!r}"
        )
        # Kubernetes only substitutes $(NAME) for a variable the container defines.
        defined = {item["name"] for item in container.get("env", []) if "value" in item}
        undefined = {name for part in actual for name in KUBERNETES_VARIABLE.findall(part)} - defined
        assert not undefined, f"{rendering.name}: {process} uses $({', '.join(sorted(undefined))}) without a value"


# --- what the deployment relies on -----------------------------------------------------------


def test_prune_runs_daily_one_run_at_a_time(rendering: Rendering) -> None:
    """docs/deploy/retention.md: `manage.py prune` from the API image, once a day, never two runs at once."""
    [cronjob] = [item for item in rendering.objects if item["kind"] == "CronJob"]
    [workload] = rendering.component("prune")
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "manage.py", "prune"]
    assert container["image"].rpartition(":")[0].endswith("emailsystem-api")
    minute, hour, *every_day = cronjob["spec"]["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and every_day == ["*", "*", "*"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert workload["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_sender_grace_period_outlasts_its_shutdown(rendering: Rendering) -> None:
    [sender] = rendering.component("sender")
    config = provided_values(rendering, sender["spec"]["template"]["spec"]["containers"][0])
    shutdown = float(config.get("SENDER_SHUTDOWN_SECONDS", Settings.shutdown_seconds))
    timeout = float(config.get("SENDGRID_TIMEOUT_SECONDS", Settings.sendgrid_timeout_seconds))
    grace = sender["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    assert timeout <= shutdown, "a SendGrid call must fit in the shutdown window"
    # After the window the sender still nacks what it holds and closes its connection.
    assert grace >= shutdown + 5, f"terminationGracePeriodSeconds {grace} leaves no time after {shutdown} s"


# The worker processes' exec probe (emailsender/liveness.py); their loops touch LIVENESS_FILE.
LIVENESS_COMMAND = ["python", "-m", "emailsender.liveness"]


@pytest.mark.parametrize("process", ["sender", "results", "relay"])
def test_worker_processes_probe_their_loops_liveness(rendering: Rendering, process: str) -> None:
    """A stuck loop restarts its pod, an outage does not, and a slow start is not killed."""
    [workload] = rendering.component(process)
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    liveness, startup = container.get("livenessProbe"), container.get("startupProbe")
    assert liveness and startup, f"{rendering.name}: {process} needs a startup and a liveness probe"
    assert liveness["exec"]["command"] == startup["exec"]["command"] == LIVENESS_COMMAND
    values = provided_values(rendering, container)
    path = values.get("LIVENESS_FILE", "")
    mounts = {mount["name"]: mount["mountPath"] for mount in container.get("volumeMounts", [])}
    writable = [name for name, mount in mounts.items() if path.startswith(mount.rstrip("/") + "/")]
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    assert writable and "emptyDir" in volumes[writable[0]], (
        f"{rendering.name}: {process}'s LIVENESS_FILE {path!r} is not on an emptyDir (the root filesystem is read-only)"
    )
    max_age = float(values.get("LIVENESS_MAX_AGE_SECONDS", Settings.liveness_max_age_seconds))
    # The loops' longest wait that touches nothing is one broker connect attempt (pika: 15 s per node).
    assert max_age >= 30, f"{rendering.name}: LIVENESS_MAX_AGE_SECONDS {max_age} would restart a process that connects"
    # The check runs a Python start-up; each probe allows it seconds, not the default one.
    assert liveness["timeoutSeconds"] >= 3 and startup["timeoutSeconds"] >= 3
    # Django's start-up comes before the loop's first touch: allow it a minute at least.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def provided_values(rendering: Rendering, container: dict[str, Any]) -> dict[str, str]:
    """Literal values from env and from envFrom ConfigMaps (not Secrets)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values |= rendering.by_kind_name[("ConfigMap", source["configMapRef"]["name"])].get("data", {})
    values |= {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}
    return values


def test_images_are_pinned(rendering: Rendering) -> None:
    unpinned = []
    for workload in rendering.workloads():
        for container in containers(workload):
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if "@sha256:" not in image and tag in ("", "latest"):
                unpinned.append(f"{where(workload, container)}: {image}")
    assert not unpinned, f"{rendering.name}: images without a pinned tag:\n  " + "\n  ".join(unpinned)


def test_objects_carry_the_recommended_labels(rendering: Rendering) -> None:
    unlabelled = []
    for item in rendering.objects:
        metadatas = [item["metadata"]]
        if item["kind"] in ("Deployment", "StatefulSet", "Job"):
            metadatas.append(item["spec"]["template"]["metadata"])
        if item["kind"] == "CronJob":
            job = item["spec"]["jobTemplate"]
            metadatas += [job["metadata"], job["spec"]["template"]["metadata"]]
        for metadata in metadatas:
            labels = metadata.get("labels", {})
            if "app.kubernetes.io/name" not in labels or labels.get("app.kubernetes.io/part-of") != "emailsystem":
                unlabelled.append(f"{item['kind']}/{item['metadata']['name']}")
    assert not unlabelled, f"{rendering.name}: missing app.kubernetes.io/name or part-of: {sorted(set(unlabelled))}"


def test_pods_are_hardened_and_bounded(rendering: Rendering) -> None:
    problems = []
    for workload in rendering.workloads():
        name = f"{workload['kind'].lower()}/{workload['metadata']['name']}"
        pod = workload["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile RuntimeDefault")
        for container in containers(workload):
            security = container.get("securityContext", {})
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where(workload, container)}: allowPrivilegeEscalation false")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where(workload, container)}: drop ALL capabilities")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where(workload, container)}: readOnlyRootFilesystem")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                if not {"cpu", "memory"} <= resources.get(bound, {}).keys():
                    problems.append(f"{where(workload, container)}: cpu and memory {bound}")
    assert not problems, f"{rendering.name}: missing\n  " + "\n  ".join(problems)


def test_web_probes_port_and_disruption_budgets(rendering: Rendering) -> None:
    [web] = rendering.component("web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = provided_values(rendering, container).get("PORT")
    assert port, f"{rendering.name}: the web container sets no PORT"
    assert [item["containerPort"] for item in container["ports"] if item["name"] == "http"] == [int(port)]
    service = rendering.by_kind_name[("Service", "web")]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    for name in ("web", "sender"):
        budget = rendering.by_kind_name[("PodDisruptionBudget", name)]
        assert (
            budget["spec"]["selector"]["matchLabels"]
            == rendering.by_kind_name[("Deployment", name)]["spec"]["selector"]["matchLabels"]
        )


def sender_autoscalers(rendering: Rendering) -> list[str]:
    """The objects that scale deployment/sender: an HPA of our own or a KEDA ScaledObject."""
    return [
        f"{item['kind']}/{item['metadata']['name']}"
        for item in rendering.objects
        if item["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
        # A ScaledObject's target kind defaults to Deployment; an HPA names it.
        and item["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        and item["spec"]["scaleTargetRef"]["name"] == "sender"
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_scales_the_sender_with_one_autoscaler(renderings: dict[str, Rendering], overlay: str) -> None:
    """components/sender-hpa or components/sender-keda: two autoscalers on one Deployment fight each other."""
    assert len(sender_autoscalers(renderings[overlay])) == 1, f"{overlay}: {sender_autoscalers(renderings[overlay])}"


def test_the_base_leaves_the_autoscaler_to_the_overlays(renderings: dict[str, Rendering]) -> None:
    assert sender_autoscalers(renderings["base"]) == []


# --- the layout ------------------------------------------------------------------------------


def test_the_base_names_no_namespace_and_holds_no_stateful_service(renderings: dict[str, Rendering]) -> None:
    base = renderings["base"]
    assert not [item["kind"] for item in base.objects if item["kind"] in ("Namespace", "StatefulSet")], (
        "the Namespace and the stateful services are components an overlay adds (manifests/components)"
    )
    namespaced = [
        f"{item['kind']}/{item['metadata']['name']}" for item in base.objects if item["metadata"].get("namespace")
    ]
    assert not namespaced, f"the overlays set the namespace; the base puts these in one: {namespaced}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_puts_everything_in_its_namespace(renderings: dict[str, Rendering], overlay: str) -> None:
    rendering = renderings[overlay]
    namespace = kustomization(MANIFESTS / overlay).get("namespace")
    assert namespace, f"{overlay} sets no namespace"
    namespaces = [item["metadata"]["name"] for item in rendering.objects if item["kind"] == "Namespace"]
    assert namespaces == [namespace], f"{overlay}: Namespace objects {namespaces}, expected [{namespace!r}]"
    elsewhere = [
        f"{item['kind']}/{item['metadata']['name']}"
        for item in rendering.objects
        if item["kind"] != "Namespace" and item["metadata"].get("namespace") != namespace
    ]
    assert not elsewhere, f"{overlay}: outside namespace {namespace}: {elsewhere}"


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda path: path.name)
def test_a_component_is_a_component_that_something_uses(component: Path) -> None:
    assert kustomization(component)["kind"] == "Component"
    users = [
        path.parent.relative_to(MANIFESTS)
        for path in MANIFESTS.rglob("kustomization.yaml")
        if any(
            (path.parent / item).resolve() == component
            for item in yaml.safe_load(path.read_text()).get("components", [])
        )
    ]
    assert users, f"nothing includes components/{component.name}"


def test_nothing_is_removed_with_a_delete_patch() -> None:
    """Leaving a component out replaces deleting objects (a two-document one made kustomize v5.5 panic)."""
    deleting = [
        str(path.relative_to(MANIFESTS)) for path in MANIFESTS.rglob("*.yaml") if "$patch: delete" in path.read_text()
    ]
    assert not deleting, f"$patch: delete in {deleting}; make what it removes a component instead"


def test_the_django_workers_share_one_pod_shape(rendering: Rendering) -> None:
    """results and relay differ only in their names, labels and Procfile command (components/django-worker)."""

    def shape(process: str) -> dict[str, Any]:
        [workload] = rendering.component(process)
        pod = yaml.safe_load(yaml.safe_dump(workload["spec"]["template"]["spec"]))
        main = pod["containers"][0]
        assert main["name"] == process and main.pop("command")[-1] == process
        main.pop("name")
        return pod

    assert shape("results") == shape("relay")
