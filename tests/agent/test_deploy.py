"""``deploy/``: every Kubernetes manifest loads into the ``kubernetes`` client's models
without losing a field (a typo fails), the ConfigMap's plan loads, the systemd unit
parses, and every command line in them is a real drkit command with real options."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from kubernetes.client import ApiClient

from drkit.cli.main import app
from drkit.plan.loader import load_plan

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def _docs() -> list[dict[str, Any]]:
    out = []
    for path in MANIFESTS:
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _model(doc: dict[str, Any]) -> Any:
    version = doc["apiVersion"].split("/")[-1].capitalize()
    client = ApiClient()
    obj = client._ApiClient__deserialize(doc, f"{version}{doc['kind']}")  # type: ignore[attr-defined]
    return obj, client.sanitize_for_serialization(obj)


def _drkit_command(argv: list[str]) -> None:
    """``argv`` (after the program) names a drkit command, and its options are its own."""
    cmd: Any = typer.main.get_command(app)
    i = 0
    while getattr(cmd, "commands", None) and i < len(argv) and argv[i] in cmd.commands:
        cmd = cmd.commands[argv[i]]
        i += 1
    assert not getattr(cmd, "commands", None), f"{argv}: not a complete drkit command"
    options = {o for p in cmd.params for o in p.opts}
    for arg in argv[i:]:
        if arg.startswith("--"):
            assert arg.split("=")[0] in options, f"drkit {' '.join(argv[:i])}: no option {arg}"


def test_there_are_manifests_and_a_unit() -> None:
    assert MANIFESTS
    assert (DEPLOY / "systemd" / "drkit-agent.service").is_file()


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_a_valid_kubernetes_object(doc: dict[str, Any]) -> None:
    _, back = _model(doc)
    assert back == doc  # a misspelt or misplaced field is dropped by the model: not equal


def _named(prefix: str) -> dict[str, dict[str, Any]]:
    """The manifests whose name starts with ``prefix``, by kind (one of each kind)."""
    out: dict[str, dict[str, Any]] = {}
    for d in _docs():
        if d["metadata"]["name"].startswith(prefix):
            assert d["kind"] not in out, f"two {d['kind']} named {prefix}*"
            out[d["kind"]] = d
    return out


def test_the_agent_deployment_runs_three_agents_on_the_shared_state(tmp_path: Path) -> None:
    docs = _named("drkit-agent") | {"ConfigMap": _named("drkit-plan")["ConfigMap"]}
    deployment, _ = _model(docs["Deployment"])
    assert deployment.spec.replicas == 3
    (container,) = deployment.spec.template.spec.containers
    assert container.command == ["drkit"]
    _drkit_command(container.args)
    assert container.liveness_probe.http_get.path == "/livez"
    port = container.args[container.args.index("--listen") + 1].rsplit(":", 1)[1]
    assert str(container.ports[0].container_port) == port
    secret = docs["Secret"]["stringData"]
    assert secret["DRKIT_STATE"].startswith("postgresql://")
    assert {"DRKIT_PASSWORD", "DRKIT_WEBHOOK_SECRET"} <= set(secret)
    assert container.env_from[0].secret_ref.name == docs["Secret"]["metadata"]["name"]
    # the plan in the ConfigMap is a drkit plan, mounted where --plan points
    plan_file = tmp_path / "drkit.yaml"
    plan_file.write_text(docs["ConfigMap"]["data"]["drkit.yaml"])
    plan = load_plan(plan_file)
    assert plan.state is not None
    assert plan.state.lease_ttl == 15.0
    mount = next(m for m in container.volume_mounts if m.name == "plan")
    assert container.args[container.args.index("--plan") + 1] == f"{mount.mount_path}/drkit.yaml"


def test_the_gateway_runs_three_replicas_sharing_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drkit.gateway.config import from_plan

    docs = _named("drkit-gateway")
    deployment, _ = _model(docs["Deployment"])
    assert deployment.spec.replicas == 3
    (container,) = deployment.spec.template.spec.containers
    assert container.command == ["drkit"]
    assert container.args[:2] == ["gateway", "serve"]
    _drkit_command(container.args)
    assert container.liveness_probe.http_get.path == "/healthz"
    assert container.readiness_probe.http_get.path == "/readyz"
    port = container.args[container.args.index("--port") + 1]
    assert str(container.ports[0].container_port) == port
    assert container.env_from[0].secret_ref.name == docs["Secret"]["metadata"]["name"]
    # the Service routes to the pods, on the port they serve
    service = docs["Service"]
    assert service["spec"]["selector"] == deployment.spec.selector.match_labels
    assert service["spec"]["ports"][0]["targetPort"] == container.ports[0].name
    # the plan: its gateway shares health through the Secret's Redis URL, which names
    # the Redis Service of the same file
    plan_file = tmp_path / "drkit.yaml"
    plan_file.write_text(docs["ConfigMap"]["data"]["drkit.yaml"])
    plan = load_plan(plan_file)
    secret = docs["Secret"]["stringData"]
    for name, value in secret.items():
        monkeypatch.setenv(name, value)
    config = from_plan(plan)
    assert config.redis_url == secret[plan.serving.gateway.redis_url_env]
    redis = _named("drkit-redis")
    host = config.redis_url.split("//", 1)[1].split(":", 1)[0]
    assert host.split(".")[0] == redis["Service"]["metadata"]["name"]
    assert (
        redis["Service"]["spec"]["selector"]
        == redis["Deployment"]["spec"]["selector"]["matchLabels"]
    )
    mount = next(m for m in container.volume_mounts if m.name == "plan")
    assert container.args[container.args.index("--plan") + 1] == f"{mount.mount_path}/drkit.yaml"
    assert {v.config_map.name for v in deployment.spec.template.spec.volumes if v.config_map} == {
        docs["ConfigMap"]["metadata"]["name"]
    }


def test_the_systemd_unit_parses_and_runs_a_real_command() -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "drkit-agent.service")
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/drkit")
    assert argv[1:3] == ["agent", "run"]
    _drkit_command(argv[1:])
    assert service["KillSignal"] == "SIGTERM"
    assert service["RestartPreventExitStatus"] == "2"  # bad input is not retried forever
    assert int(service["TimeoutStopSec"]) > 60  # beyond --grace 60s


def test_a_typo_in_a_manifest_is_caught() -> None:
    doc = next(d for d in _docs() if d["kind"] == "Deployment")
    typo = yaml.safe_load(yaml.safe_dump(doc))
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = typo["spec"]["template"][
        "spec"
    ]["containers"][0].pop("livenessProbe")
    assert _model(typo)[1] != typo
    with pytest.raises(AssertionError, match="no option --lisen"):
        _drkit_command(["agent", "run", "--lisen", "0.0.0.0:1"])
    with pytest.raises(AssertionError, match="not a complete drkit command"):
        _drkit_command(["agent"])
