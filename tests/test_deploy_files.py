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
