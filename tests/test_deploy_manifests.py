"""The deployment manifests in ops/k8s/ checked by the tools that read them, offline and fast.

- Every built-in Kubernetes object validates against the official OpenAPI schema of the oldest
  and the newest Kubernetes that `kubernetes-validate` bundles from 1.29 on (strict: no unknown
  fields); the custom resources (KEDA ScaledObject, Prometheus Operator PodMonitor and
  PrometheusRule) against the JSON schemas below, their HPA behavior against the official one.
- The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`
  ops/k8s/prometheus-rules.test.yaml: each alert fires on its series and stays quiet on
  look-alikes).
- Every PromQL expression (alert rules, the prometheus-adapter rule, KEDA prometheus triggers if
  any, every Grafana target and variable query) parses with `promql-parser`, after Grafana's and
  the adapter's template variables are filled in.
- Every metric they name is one our processes expose (read from prometheus_client's registry
  after importing booking_rush/telemetry/*metrics.py, plus the payment worker's Dramatiq queue collector), or
  comes from a named other exporter; every label they match on is one that metric or the scrape
  carries.
- The autoscalers, probes, selectors, Secret keys, environment variables and KEDA triggers agree
  with the code: settings names, consumer groups, topics, Dramatiq queue keys.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from booking_rush.contract import jobs
from booking_rush.services.endpoints import Endpoints
from booking_rush.telemetry import gateway_metrics, metrics, payment_metrics, worker_metrics
from gateway.client_address import ProxyTrust
from ops.config import REPO_ROOT
from workers.settings import ALL_ROLES, WorkerSettings

K8S_DIR = REPO_ROOT / "ops" / "k8s"
RULE_FILE = K8S_DIR / "prometheus-rules.yaml"
RULE_TESTS = K8S_DIR / "prometheus-rules.test.yaml"
DASHBOARD = K8S_DIR / "grafana-dashboard.json"
ADAPTER_RULES = K8S_DIR / "prometheus-adapter-rules.yaml"
# YAML files in ops/k8s/ that are not Kubernetes objects.
NOT_OBJECTS = {"kustomization.yaml", "prometheus-rules.yaml", "prometheus-rules.test.yaml"}
# Kubernetes objects that kustomization.yaml leaves out on purpose (it says why).
NOT_APPLIED = {"secret.example.yaml", "prometheus-adapter-rules.yaml"}
NAMESPACE = "booking-rush"

# Metrics from other exporters that the manifests may name, and where they come from.
EXTERNAL_METRICS = {
    "up": "Prometheus (scrape health)",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "kube_deployment_spec_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_current_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_desired_replicas": "kube-state-metrics",
    "container_cpu_usage_seconds_total": "cAdvisor (kubelet)",
    "redis_memory_used_bytes": "redis_exporter",
    "redis_memory_max_bytes": "redis_exporter",
    "redis_key_size": "redis_exporter (--check-single-keys)",
}
# Labels the scrape adds to every series (Prometheus Operator PodMonitor targets).
TARGET_LABELS = {"namespace", "pod", "container", "endpoint", "job", "instance"}

# The spec's alerts (§9.5) by the names the rule file gives them, with the spec's severity.
SPEC_ALERTS = {
    "HighErrorRate": "critical",
    "HighLatency": "warning",
    "ServiceDown": "critical",
    "LowStock": "warning",
    "QueueBacklog": "warning",
    "RedisHighMemory": "warning",
}

# Kubernetes releases to validate against: the oldest supported here and the newest bundled.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())


# --- loading -------------------------------------------------------------------------------


def load_yaml_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name not in NOT_OBJECTS)


@functools.cache  # read once: the tests only read them (one deep-copies before changing)
def objects() -> tuple[tuple[str, dict], ...]:
    """(file name, object) for every Kubernetes object in ops/k8s/."""
    return tuple((path.name, doc) for path in manifest_files() for doc in load_yaml_docs(path))


def object_id(item: tuple[str, dict]) -> str:
    name, obj = item
    return f"{name}:{obj['kind']}/{obj['metadata']['name']}"


def by_kind(kind: str) -> list[dict]:
    return [obj for _, obj in objects() if obj["kind"] == kind]


def one(kind: str, name: str) -> dict:
    found = [obj for obj in by_kind(kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def config_data() -> dict[str, str]:
    return one("ConfigMap", "booking-rush-config")["data"]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per pod"
    return containers[0]


def env_of(deployment: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(deployment).get("env", [])}


def kustomization() -> dict:
    return yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())


BUILTIN_GROUPS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2", "batch/v1", "networking.k8s.io/v1"}


def is_builtin(obj: dict) -> bool:
    return obj["apiVersion"] in BUILTIN_GROUPS


# --- schemas of the custom resources -------------------------------------------------------

STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": STR_MAP,
        "annotations": STR_MAP,
    },
    "additionalProperties": False,
}
KEDA_TRIGGER_TYPES = {"kafka", "redis", "prometheus", "cpu", "memory", "cron"}
# Per trigger type: metadata it must have, and what it may have (KEDA's scaler docs).
KEDA_TRIGGER_METADATA = {
    "kafka": (
        {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"},
        {
            "activationLagThreshold",
            "offsetResetPolicy",
            "allowIdleConsumers",
            "excludePersistentLag",
            "limitToPartitionsWithLag",
            "scaleToZeroOnInvalidOffset",
            "partitionLimitation",
            "version",
            "sasl",
            "tls",
        },
    ),
    "redis": (
        {"listName", "listLength"},
        {
            "address",
            "addressFromEnv",
            "host",
            "port",
            "databaseIndex",
            "activationListLength",
            "enableTLS",
            "unsafeSsl",
            "usernameFromEnv",
            "passwordFromEnv",
        },
    ),
    "prometheus": ({"serverAddress", "query", "threshold"}, {"activationThreshold", "namespace"}),
    "cpu": ({"value"}, set()),
    "memory": ({"value"}, set()),
    "cron": ({"timezone", "start", "end", "desiredReplicas"}, set()),
}
SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {
                    "type": "object",
                    "required": ["failureThreshold", "replicas"],
                    "properties": {"failureThreshold": {"type": "integer"}, "replicas": {"type": "integer"}},
                },
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            # behavior: checked against the official HPA schema separately.
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"enum": sorted(KEDA_TRIGGER_TYPES)},
                            "name": {"type": "string"},
                            # KEDA reads every metadata value as a string.
                            "metadata": STR_MAP,
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
}
DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
RULE_SCHEMA = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "properties": {
        "alert": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"},
        "record": {"type": "string"},
        "expr": {"type": "string", "minLength": 1},
        "for": {"type": "string", "pattern": DURATION},
        "keep_firing_for": {"type": "string", "pattern": DURATION},
        "labels": STR_MAP,
        "annotations": STR_MAP,
    },
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}
RULE_GROUPS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["name", "rules"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "interval": {"type": "string", "pattern": DURATION},
            "rules": {"type": "array", "minItems": 1, "items": RULE_SCHEMA},
        },
    },
}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {"groups": RULE_GROUPS_SCHEMA},
        },
    },
}
POD_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "namespaceSelector": {"type": "object"},
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": STR_MAP, "matchExpressions": {"type": "array"}},
                    "additionalProperties": False,
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    },
}
CUSTOM_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT_SCHEMA,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE_SCHEMA,
    ("monitoring.coreos.com/v1", "PodMonitor"): POD_MONITOR_SCHEMA,
}


# --- the metrics our processes expose ------------------------------------------------------

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def exposed_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, for every metric in prometheus_client's default registry
    once the telemetry metrics modules (what every process records into) are imported."""
    labels = {
        m._name: set(m._labelnames)
        for module in (metrics, gateway_metrics, worker_metrics, payment_metrics)
        for m in vars(module).values()
        if isinstance(m, MetricWrapperBase)
    }
    exposed: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        own = labels.get(family.name, set())
        for sample in family.samples:
            exposed.setdefault(sample.name, set()).update(own | set(sample.labels))
        if family.samples:
            continue
        # A labelled metric nobody has recorded into yet has no samples: its type names them.
        for suffix in SUFFIXES.get(family.type, ("",)):
            extra = {"le"} if suffix == "_bucket" else {"quantile"} if family.type == "summary" else set()
            exposed.setdefault(family.name + suffix, set()).update(own | extra)
    # Registered by the payment worker only: it reads the aux Redis at each scrape.
    exposed[payment_metrics.DramatiqQueueDepth.NAME] = set(payment_metrics.DramatiqQueueDepth.LABELS)
    return exposed


# --- PromQL --------------------------------------------------------------------------------

GRAFANA_VARIABLE = r"\$\{(\w+)(?::\w+)?\}|\$(\w+)"
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "__range_s": "3600"}


@functools.cache
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def grafana_variables() -> dict[str, str]:
    """Each dashboard variable, with a value that stands in for it in an expression."""
    values = dict(GRAFANA_BUILTINS)
    for var in dashboard()["templating"]["list"]:
        values[var["name"]] = ".*" if var.get("includeAll") else str(var.get("query", "x"))
    return values


def fill_grafana(expr: str) -> str:
    values = grafana_variables()

    def sub(match: re.Match) -> str:
        # An unknown variable stays as it is (test_grafana_dashboard_structure names it).
        return values.get(match.group(1) or match.group(2), match.group(0))

    return re.sub(GRAFANA_VARIABLE, sub, expr)


def panels() -> Iterator[dict]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def grafana_expressions() -> list[tuple[str, str]]:
    found = []
    for panel in panels():
        for target in panel.get("targets", []):
            found.append((f"grafana:{panel['title']}:{target['refId']}", fill_grafana(target["expr"])))
    for var in dashboard()["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        # Grafana's label_values(<selector>, label) is not PromQL: the selector inside is.
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        found.append((f"grafana:variable {var['name']}", fill_grafana(match.group(1) if match else query)))
    return found


def rule_groups() -> list[dict]:
    return yaml.safe_load(RULE_FILE.read_text())["groups"]


def adapter_rules() -> list[dict]:
    data = one("ConfigMap", "prometheus-adapter")["data"]["config.yaml"]
    return yaml.safe_load(data)["rules"]


def fill_adapter(query: str, series: str) -> str:
    """prometheus-adapter's metricsQuery template, as it fills it in for a request."""
    return (
        query.replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", f'namespace="{NAMESPACE}",pod=~"gateway-a|gateway-b"')
        .replace("<<.GroupBy>>", "pod")
    )


def series_name(selector: str) -> str:
    node = promql_parser.parse(selector)
    assert isinstance(node, promql_parser.VectorSelector) and node.name, selector
    return node.name


def all_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every expression in ops/k8s/."""
    found = []
    for group in rule_groups():
        for rule in group["rules"]:
            found.append((f"rules:{group['name']}:{rule.get('alert') or rule.get('record')}", rule["expr"]))
    for obj in by_kind("PrometheusRule"):
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                found.append((f"PrometheusRule:{rule.get('alert') or rule.get('record')}", rule["expr"]))
    for i, rule in enumerate(adapter_rules()):
        found.append((f"adapter:{i}:seriesQuery", rule["seriesQuery"]))
        series = series_name(rule["seriesQuery"])
        found.append((f"adapter:{i}:metricsQuery", fill_adapter(rule["metricsQuery"], series)))
    for obj in by_kind("ScaledObject"):
        for trigger in obj["spec"]["triggers"]:
            if trigger["type"] == "prometheus":
                found.append((f"keda:{obj['metadata']['name']}", trigger["metadata"]["query"]))
    return found + grafana_expressions()


def nodes(root, kind: type) -> list:
    """Every node of `kind` in an expression tree."""
    found = []
    promql_parser.walk(root, lambda n: found.append(n) if isinstance(n, kind) else None)
    return found


def selectors(root) -> list[promql_parser.VectorSelector]:
    return nodes(root, promql_parser.VectorSelector)


def metric_name(selector: promql_parser.VectorSelector) -> str:
    if selector.name:
        return selector.name
    names = [
        m.value for m in selector.matchers.matchers if m.name == "__name__" and str(m.op) == "MatchOp.Equal"
    ]
    assert names, f"selector without a metric name: {selector}"
    return names[0]


# --- Kubernetes schemas --------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("item", [i for i in objects() if is_builtin(i[1])], ids=object_id)
def test_builtin_objects_match_the_kubernetes_schema(item, version):
    _, obj = item
    kubernetes_validate.validate(obj, version, strict=True)


def test_every_object_has_a_schema_and_a_namespace():
    for name, obj in objects():
        assert is_builtin(obj) or (obj["apiVersion"], obj["kind"]) in CUSTOM_SCHEMAS, (
            f"{name}: no schema for {obj['apiVersion']} {obj['kind']}"
        )
        if obj["kind"] != "Namespace":
            expected = "monitoring" if name == ADAPTER_RULES.name else NAMESPACE
            assert obj["metadata"].get("namespace") == expected, f"{name}: {object_id((name, obj))}"


@pytest.mark.parametrize("item", [i for i in objects() if not is_builtin(i[1])], ids=object_id)
def test_custom_resources_match_their_schema(item):
    _, obj = item
    jsonschema.validate(obj, CUSTOM_SCHEMAS[(obj["apiVersion"], obj["kind"])])
    if obj["kind"] != "ScaledObject":
        return
    for trigger in obj["spec"]["triggers"]:
        required, optional = KEDA_TRIGGER_METADATA[trigger["type"]]
        keys = set(trigger["metadata"])
        assert required <= keys, f"{trigger['type']} trigger misses {required - keys}"
        assert keys <= required | optional, f"{trigger['type']} trigger: unknown {keys - required - optional}"
    # The HPA KEDA creates takes this behavior as it is: the official HPA schema must accept it.
    behavior = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = copy.deepcopy(one("HorizontalPodAutoscaler", "gateway"))
    hpa["spec"]["behavior"] = behavior
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(hpa, version, strict=True)


def test_kustomization_lists_every_manifest():
    k = kustomization()
    listed = set(k["resources"])
    for resource in listed:
        assert (K8S_DIR / resource).is_file(), resource
    files = {p.name for p in manifest_files()}
    assert listed == files - NOT_APPLIED, "ops/k8s/*.yaml and kustomization.yaml's resources differ"
    for generator in k.get("configMapGenerator", []):
        for file in generator["files"]:
            assert (K8S_DIR / file).is_file(), file
    images = {i["name"] for i in k["images"]}
    used = {container(d)["image"] for d in by_kind("Deployment")}
    assert used <= images, f"images without a kustomize tag: {used - images}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
def test_kustomize_builds():
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    built = [doc for doc in yaml.safe_load_all(out) if doc]
    applied = [obj for name, obj in objects() if name not in NOT_APPLIED]
    assert len(built) == len(applied) + len(kustomization()["configMapGenerator"])
    dashboards = [
        d for d in built if d["kind"] == "ConfigMap" and "grafana-dashboard.json" in d.get("data", {})
    ]
    assert len(dashboards) == 1 and dashboards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboards[0]["data"]["grafana-dashboard.json"]) == dashboard()
    for obj in built:
        if obj["kind"] == "Deployment":
            assert container(obj)["image"] != "booking-rush", "kustomize left an image untagged"


# --- wiring: the manifests agree with each other and with the code --------------------------


def settings_names() -> set[str]:
    """Every BR_* variable the processes read."""
    names = set()
    for folder in ("gateway", "workers", "waiting_room", "booking_rush", "lua"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r"\"(BR_[A-Z0-9_]+)\"", path.read_text()))
    for tool in ("config.py", "topics.py", "migrate.py"):  # ops.topics and ops.migrate run as Jobs
        names |= set(re.findall(r"\"(BR_[A-Z0-9_]+)\"", (REPO_ROOT / "ops" / tool).read_text()))
    return names


def test_a_job_creates_the_topics_replicated_before_anything_needs_them():
    job = one("Job", "create-topics")
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["python", "-m", "ops.topics"]
    assert [r["configMapRef"]["name"] for r in c["envFrom"]] == ["booking-rush-config"]
    config = config_data()
    replicas, in_sync = (
        int(config["BR_TOPIC_REPLICATION_FACTOR"]),
        int(config["BR_TOPIC_MIN_INSYNC_REPLICAS"]),
    )
    # One broker may be lost (disk and all) with nothing acknowledged lost, and writes go on.
    assert (replicas, in_sync) == (3, 2)
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])


def test_environment_names_settings_the_code_reads():
    known = settings_names()
    secret = one("Secret", "booking-rush-secrets")
    for name in [*config_data(), *secret["stringData"]]:
        assert name in known, f"{name} is not a setting any process reads"
    for deployment in by_kind("Deployment"):
        c = container(deployment)
        for ref in c.get("envFrom", []):
            assert ref["configMapRef"]["name"] == "booking-rush-config"
        for name, entry in env_of(deployment).items():
            assert name in known, f"{deployment['metadata']['name']}: {name} is not read by any process"
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "booking-rush-secrets" and ref["key"] in secret["stringData"], name


def test_secret_template_holds_placeholders_only():
    secret = one("Secret", "booking-rush-secrets")
    assert secret["stringData"], "the template names the keys"
    for key, value in secret["stringData"].items():
        assert "REPLACE_ME" in value, f"{key} must be a placeholder, never a real secret"


def test_gateway_pods():
    gateway = one("Deployment", "gateway")
    c, env = container(gateway), env_of(gateway)
    assert c["command"] == ["python", "-m", "gateway"]
    assert env["BR_GATEWAY_PROCESSES"]["value"] == "1"
    assert env["BR_GATEWAY_HOST"]["value"] == "0.0.0.0"
    assert env["BR_GATEWAY_PORT"]["value"] == "8080"
    # /metrics on an internal port of its own, which the Service does not expose.
    assert env["BR_GATEWAY_METRICS_PORT"]["value"] == "9100"
    assert env["BR_GATEWAY_METRICS_HOST"]["value"] == "0.0.0.0"
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("http", 8080), ("metrics", 9100)]
    assert ProxyTrust.parse(env["BR_TRUSTED_PROXIES"]["value"], int(env["BR_TRUSTED_PROXY_HOPS"]["value"]))
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"BR_JWT_SECRET", "BR_QUEUE_PASS_KEY", "BR_QUEUE_PASS_KID"} <= set(env)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), kind
    service = one("Service", "gateway")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_worker_pods():
    expected = {
        "command-worker": "commands",
        "persistence-worker": "persistence",
        "sweeper-admitter": "sweeper,admitter,archiver",
    }
    for name, roles in expected.items():
        deployment = one("Deployment", name)
        c, env = container(deployment), env_of(deployment)
        assert c["command"] == ["python", "-m", "workers"], name
        assert env["BR_WORKER_ROLES"]["value"] == roles
        assert set(roles.split(",")) <= set(ALL_ROLES)
        assert env["BR_METRICS_PORT"]["value"] == "9100" and env["BR_METRICS_HOST"]["value"] == "0.0.0.0"
        assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("metrics", 9100)]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (name, kind)
    payment, payment_env = (
        container(one("Deployment", "payment-worker")),
        env_of(one("Deployment", "payment-worker")),
    )
    assert payment["command"] == ["python", "-m", "workers.payment_worker"]
    assert "BR_DATABASE_URL" in payment_env
    assert payment_env["BR_METRICS_PORT"]["value"] == "9100"
    assert payment_env["BR_METRICS_HOST"]["value"] == "0.0.0.0"
    assert [(p["name"], p["containerPort"]) for p in payment["ports"]] == [("metrics", 9100)]
    assert "BR_DATABASE_URL" in env_of(one("Deployment", "persistence-worker"))
    assert "BR_DATABASE_URL" in env_of(one("Deployment", "sweeper-admitter"))  # the archiver's


def test_probes_and_selectors_meet_the_pods():
    pods = {}
    for deployment in by_kind("Deployment"):
        template = deployment["spec"]["template"]
        labels = template["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]
        c = container(deployment)
        ports = {p["name"] for p in c.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in c:
                assert c[probe]["httpGet"]["port"] in ports, (deployment["metadata"]["name"], probe)
        pods[deployment["metadata"]["name"]] = (labels, ports)

    def matching(selector: dict) -> list[str]:
        return [name for name, (labels, _) in pods.items() if selector.items() <= labels.items()]

    assert matching(one("Service", "gateway")["spec"]["selector"]) == ["gateway"]
    for pdb in by_kind("PodDisruptionBudget"):
        assert matching(pdb["spec"]["selector"]["matchLabels"]) == [pdb["metadata"]["name"]]
    monitor = one("PodMonitor", "booking-rush")
    scraped = matching(monitor["spec"]["selector"]["matchLabels"])
    endpoint_ports = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    assert endpoint_ports == {"metrics"}  # never the gateway's API port
    served = [name for name in scraped if pods[name][1] & endpoint_ports]
    assert sorted(served) == [
        "command-worker",
        "gateway",
        "payment-worker",
        "persistence-worker",
        "sweeper-admitter",
    ]
    # The alert rules name the scrape jobs: the pods' component label (the PodMonitor's jobLabel).
    jobs_in_rules = set()
    for group in rule_groups():
        for rule in group["rules"]:
            jobs_in_rules |= set(re.findall(r'job=~"([^"]+)"', rule["expr"]))
    job_label = monitor["spec"]["jobLabel"]
    for alternatives in jobs_in_rules:
        assert sorted(alternatives.split("|")) == sorted(pods[name][0][job_label] for name in served)


def autoscalers() -> list[tuple[str, dict, int, int]]:
    """(target Deployment, object, min, max) for the HPA and every ScaledObject."""
    found = []
    for hpa in by_kind("HorizontalPodAutoscaler"):
        s = hpa["spec"]
        found.append((s["scaleTargetRef"]["name"], hpa, s["minReplicas"], s["maxReplicas"]))
    for so in by_kind("ScaledObject"):
        s = so["spec"]
        found.append((s["scaleTargetRef"]["name"], so, s["minReplicaCount"], s["maxReplicaCount"]))
    return found


def test_autoscaling_bounds_and_cool_down():
    """Spec §7.2: min 2, max 10, a 60 s cool-down; one autoscaler per Deployment, which then
    carries no `replicas` of its own; the sweeper and admitter are not autoscaled."""
    targets = [t for t, *_ in autoscalers()]
    assert sorted(targets) == ["command-worker", "gateway", "payment-worker", "persistence-worker"]
    for target, obj, low, high in autoscalers():
        assert (low, high) == (2, 10), target
        deployment = one("Deployment", target)
        assert "replicas" not in deployment["spec"], f"{target}: replicas belong to its autoscaler"
        assert obj["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        if obj["kind"] == "HorizontalPodAutoscaler":
            behavior = obj["spec"]["behavior"]
        else:
            assert obj["spec"]["cooldownPeriod"] == 60
            behavior = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60, target
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0, target
    assert one("Deployment", "sweeper-admitter")["spec"]["replicas"] >= 2


def test_gateway_scales_on_cpu_and_open_streams():
    hpa = one("HorizontalPodAutoscaler", "gateway")
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    cpu = metrics["Resource"]["resource"]
    assert cpu["name"] == "cpu" and cpu["target"] == {"type": "Utilization", "averageUtilization": 70}
    pods = metrics["Pods"]["pods"]
    assert pods["target"]["type"] == "AverageValue" and int(pods["target"]["averageValue"]) > 0
    # prometheus-adapter turns a series into this custom metric, per pod.
    served = {}
    for rule in adapter_rules():
        series = series_name(rule["seriesQuery"])
        go_template = rule["name"]["as"]
        served[re.sub(rule["name"]["matches"], re.sub(r"\$\{?(\d+)\}?", r"\\\1", go_template), series)] = rule
        assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
        grouped = promql_parser.parse(fill_adapter(rule["metricsQuery"], series))
        assert isinstance(grouped, promql_parser.AggregateExpr) and grouped.modifier.labels == ["pod"]
    assert pods["metric"]["name"] in served
    assert pods["metric"]["name"] in exposed_metrics()


def redis_address(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}", (parts.path.strip("/") or "0")


def test_kafka_triggers_watch_the_consumer_groups():
    config, settings = (
        config_data(),
        WorkerSettings(endpoints=Endpoints.local(topic_prefix=config_data()["BR_TOPIC_PREFIX"])),
    )
    expected = {
        "command-worker": ("commands", settings.command_group, settings.topics.reservations),
        "persistence-worker": ("persistence", settings.persistence_group, settings.topics.events),
    }
    for name, (role, group, topic) in expected.items():
        so = one("ScaledObject", name)
        assert env_of(one("Deployment", name))["BR_WORKER_ROLES"]["value"] == role
        (trigger,) = so["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["bootstrapServers"] == config["BR_KAFKA_BOOTSTRAP"]
        assert (meta["consumerGroup"], meta["topic"]) == (group, topic)
        assert int(meta["lagThreshold"]) > 0
        # Never more consumers than partitions with lag: the rest would sit idle.
        assert meta["allowIdleConsumers"] == "false" and meta["limitToPartitionsWithLag"] == "true"
        assert meta["offsetResetPolicy"] == "earliest"  # as the consumers (booking_rush/services/clients.py)


def test_redis_triggers_watch_the_dramatiq_queues():
    config = config_data()
    address, db = redis_address(config["BR_AUX_REDIS_URL"])
    namespace = jobs.namespace(config["BR_TOPIC_PREFIX"])
    so = one("ScaledObject", "payment-worker")
    watched = set()
    for trigger in so["spec"]["triggers"]:
        meta = trigger["metadata"]
        assert trigger["type"] == "redis"
        assert (meta["address"], meta["databaseIndex"]) == (address, db)
        assert int(meta["listLength"]) > 0
        watched.add(meta["listName"])
    # dramatiq's RedisBroker keeps a queue's message ids in the list "<namespace>:<queue>".
    assert watched == {f"{namespace}:{jobs.PAYMENTS_QUEUE}", f"{namespace}:{jobs.MAIL_QUEUE}"}


# --- alert rules ---------------------------------------------------------------------------


def test_alert_rule_file_structure():
    document = yaml.safe_load(RULE_FILE.read_text())
    assert set(document) == {"groups"}
    jsonschema.validate(document["groups"], RULE_GROUPS_SCHEMA)
    names = [g["name"] for g in document["groups"]]
    assert len(names) == len(set(names)), "group names are unique"
    alerts = {}
    for group in document["groups"]:
        for rule in group["rules"]:
            assert "alert" in rule, "alerting rules only"
            assert rule["alert"] not in alerts, f"{rule['alert']} twice"
            assert "for" in rule, rule["alert"]
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
            alerts[rule["alert"]] = rule
    for name, severity in SPEC_ALERTS.items():
        assert name in alerts, f"spec §9.5 alert {name} is missing"
        assert alerts[name]["labels"]["severity"] == severity, name
    # "Health check fails 3x" at a 15 s scrape interval.
    monitor = one("PodMonitor", "booking-rush")
    intervals = {e["interval"] for e in monitor["spec"]["podMetricsEndpoints"]}
    assert intervals == {"15s"} and alerts["ServiceDown"]["for"] == "45s"


def test_prometheus_rule_wraps_the_rule_file():
    assert one("PrometheusRule", "booking-rush")["spec"]["groups"] == rule_groups()


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `ops/bootstrap.sh --for-tests` installs Debian's prometheus"
    return subprocess.run([tool, *args], cwd=K8S_DIR, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rule_file():
    result = promtool("check", "rules", RULE_FILE.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len([r for g in rule_groups() for r in g['rules']])} rules found" in result.stdout


def test_alert_rules_pass_their_unit_tests():
    """prometheus-rules.test.yaml: series that must fire each alert (with its labels and rendered
    annotations) and look-alikes that must not."""
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# Ratio panels and what they must read for given traffic (series sampled every 15 s, read at
# 5 m): the 0 a missing side stands for, and the share itself.
NS = f'namespace="{NAMESPACE}"'
RATIO_PANEL_CASES = {
    "Error rate (5xx share)": [
        (
            {
                f'http_requests_total{{{NS}, status="500"}}': "3",
                f'http_requests_total{{{NS}, status="201"}}': "147",
            },
            0.02,
        ),
        ({f'http_requests_total{{{NS}, status="201"}}': "150"}, 0.0),
    ],
    "Reservation success rate": [
        (
            {
                f'booking_reservations_total{{{NS}, event_id="e1"}}': "60",
                f'booking_reservation_failures_total{{{NS}, event_id="e1", reason="sold_out"}}': "60",
            },
            0.5,
        ),
        ({f'booking_reservation_failures_total{{{NS}, event_id="e1", reason="sold_out"}}': "60"}, 0.0),
        ({f'booking_reservations_total{{{NS}, event_id="e1"}}': "60"}, 1.0),
    ],
    "Payment success share": [
        (
            {
                f'payment_outcomes_total{{{NS}, outcome="success"}}': "9",
                f'payment_outcomes_total{{{NS}, outcome="failed"}}': "1",
                f'payment_outcomes_total{{{NS}, outcome="refunded"}}': "5",
            },
            0.9,
        ),
        ({f'payment_outcomes_total{{{NS}, outcome="failed"}}': "4"}, 0.0),
    ],
}


def test_ratio_panels_read_the_share_and_zero_for_a_missing_side(tmp_path):
    """promtool evaluates each ratio panel's query on series made for it (every counter grows
    by the given step each 15 s)."""
    by_title = {panel["title"]: panel for panel in panels()}
    tests = []
    for title, cases in RATIO_PANEL_CASES.items():
        (target,) = by_title[title]["targets"]
        for series, expected in cases:
            tests.append(
                {
                    "interval": "15s",
                    "input_series": [{"series": s, "values": f"0+{step}x40"} for s, step in series.items()],
                    "promql_expr_test": [
                        {
                            "expr": fill_grafana(target["expr"]),
                            "eval_time": "5m",
                            "exp_samples": [{"labels": "{}", "value": expected}],
                        }
                    ],
                }
            )
    path = tmp_path / "panels.test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "15s", "tests": tests}))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_quiet():
    document = yaml.safe_load(RULE_TESTS.read_text())
    assert document["rule_files"] == [RULE_FILE.name]
    fires, quiet = set(), set()
    for case in document["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {rule["alert"] for group in rule_groups() for rule in group["rules"]}
    assert alerts <= fires, f"never shown to fire: {alerts - fires}"
    assert set(SPEC_ALERTS) <= quiet, f"never shown to stay quiet: {set(SPEC_ALERTS) - quiet}"


def output_labels(node) -> set[str] | None:
    """The labels an expression's result keeps, where that is plain from its shape (else None)."""
    if isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is None:
            return set()
        if node.modifier.type == promql_parser.AggModifierType.By:
            return set(node.modifier.labels)
        return None
    if isinstance(node, promql_parser.ParenExpr):
        return output_labels(node.expr)
    if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
        inner = output_labels(node.args[1])
        return None if inner is None else inner - {"le"}
    if isinstance(node, promql_parser.BinaryExpr):
        if str(node.op) == "or":
            return None
        if isinstance(node.lhs, promql_parser.NumberLiteral):
            return output_labels(node.rhs)
        return output_labels(node.lhs)
    return None


def test_annotations_name_labels_the_alert_carries():
    for group in rule_groups():
        for rule in group["rules"]:
            keeps = output_labels(promql_parser.parse(rule["expr"]))
            used = set()
            for text in rule["annotations"].values():
                used |= set(re.findall(r"\$labels\.(\w+)", text))
            if keeps is not None:
                assert used <= keeps, f"{rule['alert']}: {used - keeps} not in the result"


# --- PromQL and metric names ---------------------------------------------------------------


@pytest.mark.parametrize(("where", "expr"), all_expressions(), ids=[w for w, _ in all_expressions()])
def test_promql_parses(where, expr):
    promql_parser.parse(expr)


def test_referenced_metrics_are_exposed():
    exposed = exposed_metrics()
    # Sanity: the names the alert rules and autoscalers lean on are in the registry's view.
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "kafka_consumer_lag",
        "waiting_room_sse_connections",
        "booking_reservation_failures_total",
    } <= set(exposed)
    allowed = set(exposed) | set(EXTERNAL_METRICS)
    referenced = {}
    for where, expr in all_expressions():
        for selector in selectors(promql_parser.parse(expr)):
            referenced.setdefault(metric_name(selector), where)
    for hpa in by_kind("HorizontalPodAutoscaler"):
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] in ("Pods", "Object", "External"):
                spec = metric[metric["type"].lower()]
                referenced.setdefault(spec["metric"]["name"], f"HPA {hpa['metadata']['name']}")
    unknown = {name: where for name, where in referenced.items() if name not in allowed}
    assert not unknown, f"metrics no process or named exporter exposes: {unknown}"


def test_label_matchers_and_groupings_name_real_labels():
    labels = exposed_metrics()

    def known(selector) -> set[str] | None:
        name = metric_name(selector)
        return None if name not in labels else labels[name] | TARGET_LABELS

    for where, expr in all_expressions():
        root = promql_parser.parse(expr)
        for selector in selectors(root):
            have = known(selector)
            if have is None:
                continue  # another exporter's metric: its labels are its own
            for matcher in selector.matchers.matchers:
                if matcher.name != "__name__":
                    assert matcher.name in have, (
                        f"{where}: {metric_name(selector)} has no label {matcher.name}"
                    )

        groupings = [n for n in nodes(root, promql_parser.AggregateExpr) if n.modifier is not None]
        for node in groupings:
            inner = [known(s) for s in selectors(node.expr)]
            if inner and all(k is not None for k in inner):
                missing = set(node.modifier.labels) - set().union(*inner)
                assert not missing, f"{where}: grouping by {missing}, which no series inside carries"


# --- the dashboard -------------------------------------------------------------------------


def test_grafana_dashboard_structure():
    dash = dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert rows == ["System overview", "Booking", "Waiting room", "Payments"]
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "namespace", "event"} <= variables
    placed = set()
    for panel in panels():
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & placed, f"{panel['title']} overlaps another panel"
        placed |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and "legendFormat" in target, panel["title"]
            for match in re.finditer(GRAFANA_VARIABLE, target["expr"]):
                name = match.group(1) or match.group(2)
                assert name in grafana_variables(), f"{panel['title']}: unknown variable ${name}"
    # Each row has panels under it.
    order = [p["type"] for p in sorted(dash["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))]
    for i, kind in enumerate(order):
        if kind == "row":
            assert i + 1 < len(order) and order[i + 1] != "row", "an empty row"
