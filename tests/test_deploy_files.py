"""deploy/ and the Containerfile, checked the way a cluster, Prometheus and Compose would read them.

Kubernetes manifests against the API schemas (kubernetes-validate, offline and strict), the alert
rules with ``promtool`` (Debian's prometheus package), Compose by a YAML parser and structural
checks. Every SCREENSHOT_* variable these files set is loaded by the service's own config loader,
so a misspelt or invalid key fails here rather than at a pod's start.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from screenshot_service import config_loading
from screenshot_service.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
AUTOSCALING = KUBERNETES / "autoscaling"
KUBERNETES_VERSION = "1.30.0"  # the oldest release still in common managed offerings
IMAGE = "localhost/screenshot-service:latest"
# What every Secret-held value stands for when the config is loaded (its form is all that matters).
SECRET_STAND_INS = {"redis-url": "redis://:pw@redis:6379/0", "s3-access-key-id": "id", "s3-secret-access-key": "pw"}


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/kubernetes by kind (one object per kind)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"{path.name}: a second {document['kind']}"
            found[document["kind"]] = document
    return found


def load_settings(environ: dict[str, str]) -> Any:
    return config_loading.load(None, {name: value for name, value in environ.items() if name.startswith("SCREENSHOT_")})


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


# -- Kubernetes --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(set(KUBERNETES.glob("*.yaml")) - {KUBERNETES / "kustomization.yaml"}),
                         ids=lambda p: p.name)
def test_every_manifest_matches_the_kubernetes_schema(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_broken_manifest() -> None:
    deployment = manifests()["Deployment"]
    container_of(deployment)["readinessProbe"]["httpGet"]["port"] = {"not": "a port"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(listed) == sorted(present)


def test_deployment_probes_resources_and_security() -> None:
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = container_of(deployment)
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port == {"http": 8000}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    if container["securityContext"].get("readOnlyRootFilesystem"):
        mounted = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/data", "/tmp"} <= mounted, "Chromium's profiles and the service's data need writable mounts"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_termination_grace_outlasts_prestop_and_the_drain() -> None:
    objects = manifests()
    deployment, config_map = objects["Deployment"], objects["ConfigMap"]
    container = container_of(deployment)
    settings = load_settings(config_map["data"])
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_seconds = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # After the drain the service still closes jobs, browser, storage and state: leave it 5 s.
    assert grace >= pre_stop_seconds + settings.server.drain_seconds + 5


def test_deployment_environment_is_a_valid_service_config() -> None:
    objects = manifests()
    deployment, config_map, secret = objects["Deployment"], objects["ConfigMap"], objects["Secret"]
    container = container_of(deployment)
    assert [source["configMapRef"]["name"] for source in container["envFrom"]] == [config_map["metadata"]["name"]]
    environ = dict(config_map["data"])
    for variable in container["env"]:
        reference = variable.get("valueFrom", {}).get("secretKeyRef")
        if reference is None:
            environ[variable["name"]] = variable["value"]
            continue
        assert reference["name"] == secret["metadata"]["name"]
        assert reference["key"] in secret["stringData"], f"{variable['name']}: no {reference['key']!r} in the Secret"
        environ[variable["name"]] = SECRET_STAND_INS[reference["key"]]
    settings = load_settings(environ)
    assert settings.state.backend == "redis" and settings.storage.backend == "s3"
    assert not any(name.startswith("SCREENSHOT_") and "SECRET" in name for name in config_map["data"])


def test_service_pdb_and_autoscaler_point_at_the_deployment() -> None:
    objects = manifests()
    deployment = objects["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert objects["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert objects["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert objects["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2  # the PDB's minAvailable: 1 can hold


# -- Prometheus --------------------------------------------------------------------------------


def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("PROMTOOL MISSING: the alert rules were NOT checked; install Debian's `prometheus` "
                    "package (scripts/test's bootstrap does it as root)")
    return tool


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_fire_on_the_series_the_service_exports() -> None:
    tests = ALERTS.with_name("alerts.test.yml")
    result = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def readme_alert_rows() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| alert | expression", 1)[1].split("\n\n", 1)[0]
    return [line.split("|")[1].strip() for line in table.splitlines()[2:] if line.startswith("|")]


def test_every_readme_alert_is_a_rule_and_every_rule_a_readme_alert() -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    rows = readme_alert_rows()
    assert len(rows) >= 10
    assert sorted({rule["annotations"]["readme_alert"] for rule in rules}) == sorted(rows)


def exported_series() -> set[str]:
    """The names of every series /metrics can carry (labelled families have no sample until used)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {family.name + suffix for family in Metrics(lambda: {}).registry.collect()
            for suffix in suffixes[family.type]}


def test_every_metric_the_rules_use_is_exported() -> None:
    exported = exported_series()
    used = set(re.findall(r"\bscreenshot_\w+", ALERTS.read_text()))
    assert used and used <= exported, sorted(used - exported)


# -- autoscaling on the queues (deploy/kubernetes/autoscaling) ---------------------------------


def autoscaling(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((AUTOSCALING / name).read_text())
    return document


def adapter_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(autoscaling("prometheus-adapter-rules.yaml")["data"]["config.yaml"])
    return rules


def keda_queries() -> list[str]:
    triggers = autoscaling("keda-scaledobject.yaml")["spec"]["triggers"]
    return [t["metadata"]["query"] for t in triggers if t["type"] == "prometheus"]


def adapter_queries() -> list[str]:
    """The adapter's queries with its template filled in as the adapter would."""
    rules = adapter_rules()
    filled = {"<<.GroupBy>>": "namespace", "<<.LabelMatchers>>": 'namespace="default"'}
    queries = []
    for rule in rules["rules"] + rules["externalRules"]:
        query = rule["metricsQuery"]
        for template, stand_in in filled.items():
            query = query.replace(template, stand_in)
        queries += [query, rule["seriesQuery"]]
    return queries


@pytest.mark.parametrize("name", ["hpa-queue.yaml", "prometheus-adapter-rules.yaml"])
def test_queue_autoscaling_manifests_match_the_kubernetes_schema(name: str) -> None:
    kubernetes_validate.validate(autoscaling(name), KUBERNETES_VERSION, strict=True)


def test_the_queue_autoscalers_scale_the_deployment_on_metrics_the_adapter_serves() -> None:
    deployment = manifests()["Deployment"]["metadata"]["name"]
    hpa = autoscaling("hpa-queue.yaml")
    assert hpa["metadata"]["name"] == manifests()["HorizontalPodAutoscaler"]["metadata"]["name"]  # replaces it
    assert (hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]) == ("Deployment", deployment)
    assert hpa["spec"]["minReplicas"] >= 2
    wanted = {(m["type"], m[m["type"].lower()]["metric"]["name"]) for m in hpa["spec"]["metrics"] if m["type"] != "Resource"}
    rules = adapter_rules()
    served = {("Pods", r["name"]["as"]) for r in rules["rules"]} | {("External", r["name"]["as"]) for r in rules["externalRules"]}
    assert wanted == served == {("Pods", "screenshot_sync_queue_depth"), ("External", "screenshot_jobs_queue_depth")}


def test_the_keda_scaled_object_is_well_formed() -> None:
    """KEDA's CRD is not in the Kubernetes schemas: its shape is checked here, field by field."""
    scaled = autoscaling("keda-scaledobject.yaml")
    assert (scaled["apiVersion"], scaled["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert set(scaled) == {"apiVersion", "kind", "metadata", "spec"}
    spec = scaled["spec"]
    assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "advanced", "triggers",
                         "pollingInterval", "cooldownPeriod"}  # fmt: skip
    assert spec["scaleTargetRef"]["name"] == manifests()["Deployment"]["metadata"]["name"]
    assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    kubernetes_validate.validate(  # KEDA hands this to the HPA it makes: it must be a valid HPA behavior
        {**autoscaling("hpa-queue.yaml"), "spec": {**autoscaling("hpa-queue.yaml")["spec"], "behavior": behavior}},
        KUBERNETES_VERSION, strict=True)  # fmt: skip
    for trigger in spec["triggers"]:
        assert trigger["type"] in ("cpu", "prometheus")
        metadata = trigger["metadata"]
        if trigger["type"] == "cpu":
            assert trigger["metricType"] == "Utilization" and 0 < int(metadata["value"]) <= 100
        else:
            assert set(metadata) == {"serverAddress", "query", "threshold"}
            assert metadata["serverAddress"].startswith("http") and float(metadata["threshold"]) > 0
    assert len(keda_queries()) == 2


def test_the_autoscaling_queries_are_valid_promql_on_exported_series(tmp_path: Path) -> None:
    queries = keda_queries() + adapter_queries()
    exported = exported_series()
    for query in queries:
        used = set(re.findall(r"\bscreenshot_\w+", query))
        assert used and used <= exported, (query, sorted(used - exported))
        assert set(re.findall(r'lane="(\w+)"', query)) <= {"sync", "jobs"}, query
    # promtool parses every query as a recording rule: a syntax error fails here, not in the cluster.
    rules = {"groups": [{"name": "autoscaling", "rules": [
        {"record": f"autoscaling:query{n}", "expr": query} for n, query in enumerate(queries)]}]}
    checked = tmp_path / "autoscaling-queries.yml"
    checked.write_text(yaml.safe_dump(rules))
    result = subprocess.run([promtool(), "check", "rules", str(checked)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- Compose -----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return parsed


def compose_environ(environment: dict[str, str]) -> dict[str, str]:
    """Compose's ${VAR:-default} and ${VAR:?message} with nothing set: the default, or a stand-in."""
    def expand(value: str) -> str:
        return re.sub(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}", lambda m: m.group(2) or "set-by-operator", value)

    return {name: expand(str(value)) for name, value in environment.items()}


def test_compose_has_two_instances_redis_s3_and_a_balancer() -> None:
    services = compose()["services"]
    instances = [name for name, service in services.items() if service.get("image") == IMAGE]
    assert len(instances) >= 2
    images = {name: service.get("image", "") for name, service in services.items()}
    assert any("redis" in image for image in images.values())
    assert any("minio" in image or "moto" in image for image in images.values())
    balancer = services["lb"]
    assert balancer["ports"] == ["8080:8080"]
    config = (DEPLOY / balancer["volumes"][0].split(":")[0]).read_text()
    for name in instances:
        assert re.search(rf"^\s*server {name} {name}:8000 check", config, re.M), name
    assert "httpchk GET /readyz" in config


def test_compose_services_are_health_checked_and_wait_for_their_dependencies() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if name != "s3-bucket":  # a one-shot job: its exit status is its health
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    instance = services["shots-a"]
    assert instance["healthcheck"]["test"] == ["CMD", "readyz-check"]
    assert instance["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_instances_share_state_and_storage_with_a_valid_config() -> None:
    services = compose()["services"]
    for name in ("shots-a", "shots-b"):
        settings = load_settings(compose_environ(services[name]["environment"]))
        assert settings.state.backend == "redis"
        assert settings.state.redis.url.endswith("@redis:6379/0")
        assert settings.storage.backend == "s3"
        assert settings.storage.s3.endpoint_url == "http://s3:9000"
        grace = int(services[name]["stop_grace_period"].rstrip("s"))
        assert grace >= settings.server.drain_seconds + 5


# -- the Containerfile -------------------------------------------------------------------------


def containerfile_runtime_stage() -> str:
    return (ROOT / "Containerfile").read_text().rsplit("\nFROM ", 1)[1]


def test_image_runs_as_a_user_with_data_under_data_and_a_readiness_check() -> None:
    stage = containerfile_runtime_stage()
    user = re.search(r"^USER (\S+)", stage, re.M)
    assert user and user.group(1).split(":")[0] not in ("0", "root")
    assert re.search(r"^VOLUME /data$", stage, re.M)
    assert re.search(r"^HEALTHCHECK .*CMD \[\"readyz-check\"\]", stage, re.M)
    assert "/readyz" in (DEPLOY / "container" / "readyz-check").read_text()
    env = dict(re.findall(r"(SCREENSHOT_\w+)=(\S+)", stage))
    settings = load_settings(env)
    assert settings.server.host == "0.0.0.0" and settings.server.port == 8000
    assert settings.state.sqlite.path.startswith("/data/") and settings.storage.local.path.startswith("/data/")
