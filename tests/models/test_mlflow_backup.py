"""``drkit backup`` of an MLflow registry and ``drkit restore`` of it into another, empty
MLflow: models, versions (same numbers, in order, a deleted one kept as a gap), aliases,
tags, descriptions and the artifacts' bytes all arrive; a target that already holds a
model of the snapshot is refused; an unreachable server and an empty registry are
distinct, visible outcomes.

Two real ``mlflow server`` processes (SQLite backends, artifacts served over HTTP) on
127.0.0.1, started side by side once for the module (tests/models/mlflow_servers.py)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.models.mlflow_servers import mlflow_servers
from tests.servers import free_port

from drkit.cli.main import main

#: the model file's bytes: fixed seed, incompressible, larger than one chunk
WEIGHTS = random.Random(15).randbytes(1_500_000)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:

    bases = [tmp_path_factory.mktemp("mlflow-a"), tmp_path_factory.mktemp("mlflow-b")]
    with mlflow_servers(bases) as [a, b]:
        _seed(a, tmp_path_factory.mktemp("artifacts"))
        yield a, b


def _seed(url: str, work: Path) -> None:
    """``assistant``: versions 1-3 of a model directory, 2 deleted, two aliases; ``has
    spaces``: one version whose artifact is a single file."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url, url)
    exp = client.create_experiment("train")
    run = client.create_run(exp)
    rid = run.info.run_id
    model = work / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(WEIGHTS)
    (model / "sub" / "config.json").write_text('{"layers": 2}\n')
    client.log_artifacts(rid, str(model), "model")
    (work / "tokenizer.json").write_bytes(b'{"vocab": ["\\u00e9"]}')
    client.log_artifact(rid, str(work / "tokenizer.json"), "tok")
    client.create_registered_model("assistant", tags={"team": "ml"}, description="the bot")
    for n in (1, 2, 3):
        client.create_model_version(
            "assistant",
            f"runs:/{rid}/model",
            run_id=rid,
            tags={"stage": f"s{n}", "drkit.upstream.openai": f"ft:{n}"},
            description=f"release {n}",
            await_creation_for=0,
        )
    client.delete_model_version("assistant", "2")
    client.set_registered_model_alias("assistant", "champion", "3")
    client.set_registered_model_alias("assistant", "previous", "1")
    client.create_registered_model("has spaces")
    client.create_model_version(
        "has spaces", f"runs:/{rid}/tok/tokenizer.json", run_id=rid, await_creation_for=0
    )


def _plan(tmp_path: Path, uri: str, **extra: Any) -> Path:
    data = {
        "version": 1,
        "name": "mlflow-backup",
        "tiers": {"standard": {"rto": "1h", "rpo": "1d"}},
        "repositories": {
            "primary": {"name": "primary", "url": f"file://{tmp_path / 'repo'}", "region": "eu"}
        },
        "mlflow_registries": [
            {"name": "registry", "tier": "standard", "tracking_uri": uri, **extra}
        ],
    }
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["repo", "init", "--plan", str(path)]) == 0
    return path


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert got == code, captured.err + captured.out
    return json.loads(captured.out) if captured.out.strip() else captured.err


def _registry(url: str) -> list[Any]:
    """Everything a registry holds that a restore must carry, artifacts as bytes."""
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url, url)
    out = []
    for rm in sorted(client.search_registered_models(), key=lambda r: r.name):
        versions = []
        for mv in sorted(
            client.search_model_versions(f"name='{rm.name}'"), key=lambda v: int(v.version)
        ):
            where = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=client.get_model_version_download_uri(rm.name, mv.version),
                    tracking_uri=url,
                )
            )
            files = (
                {str(p.relative_to(where)): p.read_bytes() for p in where.rglob("*") if p.is_file()}
                if where.is_dir()
                else {where.name: where.read_bytes()}
            )
            versions.append((mv.version, mv.tags, mv.description, mv.status, files))
        out.append((rm.name, rm.description, rm.tags, dict(rm.aliases), versions))
    return out


@pytest.mark.usefixtures("cli_env")
def test_round_trip_into_an_empty_server(
    servers: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = servers
    plan = str(_plan(tmp_path, a))
    [item] = _run(capsys, ["backup", "--plan", plan])
    assert item["status"] == "ok"
    assert item["kind"] == "mlflow"
    assert item["meta"] | {"artifact_bytes": 0} == {
        "models": 2,
        "versions": 3,
        "aliases": 2,
        "artifact_files": 5,  # two versions of the model directory (2 files each), one file
        "artifact_bytes": 0,
    }
    snap = item["snapshot"]
    # the second version's weights are the first's: stored once
    assert item["summary"]["new_bytes_stored"] < 1.5 * len(WEIGHTS)
    again = _run(capsys, ["backup", "--plan", plan])[0]
    assert again["summary"]["new_bytes_stored"] < 10_000  # nothing new but the manifest

    dry = _run(capsys, ["restore", snap, "--to", b, "--dry-run", "--plan", plan])
    assert dry["dry_run"] is True
    assert [(m["name"], m["versions"], m["placeholders"]) for m in dry["models"]] == [
        ("assistant", [1, 3], [2]),
        ("has spaces", [1], []),
    ]
    assert any(n.startswith("runs:") for n in dry["not_carried"])
    assert _registry(b) == []  # the dry run wrote nothing

    done = _run(capsys, ["restore", snap, "--to", b, "--plan", plan])
    assert done["dry_run"] is False
    assert done["run_id"]
    source, restored = _registry(a), _registry(b)
    assert restored == source
    assistant = restored[0]
    assert [v[0] for v in assistant[4]] == ["1", "3"]  # the same numbers, 2 still a gap
    assert assistant[3] == {"champion": "3", "previous": "1"}
    assert assistant[4][1][4]["weights.bin"] == WEIGHTS

    # a second restore into the same server: every model collides, refused, nothing changed
    err = _run(capsys, ["restore", snap, "--to", b, "--plan", plan], code=2)
    assert "already has registered model(s) 'assistant', 'has spaces'" in err["error"]["message"]
    assert "empty MLflow" in err["error"]["hint"]
    assert _registry(b) == source

    # the restore test rebuilds the snapshot in a scratch MLflow and marks it verified
    [check] = _run(capsys, ["verify", "registry", "--plan", plan])
    assert check["ok"] is True, check


@pytest.mark.usefixtures("cli_env")
def test_restore_into_a_server_holding_its_models_is_refused(
    servers: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = servers
    plan = str(_plan(tmp_path, a, models=["has spaces"]))
    [item] = _run(capsys, ["backup", "--plan", plan])
    assert item["meta"]["models"] == 1
    before = _registry(a)
    err = _run(capsys, ["restore", item["snapshot"], "--to", a, "--plan", plan], code=2)
    assert "already has registered model(s) 'has spaces'" in err["error"]["message"]
    assert _registry(a) == before


@pytest.mark.usefixtures("cli_env")
def test_an_empty_registry_is_nothing_to_back_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'empty.db'}"  # MLflow's own SQL store, no model in it
    plan = str(_plan(tmp_path, store))
    [res] = _run(capsys, ["backup", "--plan", plan], code=1)
    assert res["status"] == "nothing"
    assert "has no registered model" in res["message"]
    assert _run(capsys, ["snapshots", "--plan", plan]) == []
    # allowed empty: still shown as nothing, but not a failure
    plan = str(_plan(tmp_path / "allowed", store, allow_empty=True))
    assert _run(capsys, ["backup", "--plan", plan])[0]["status"] == "nothing"


@pytest.mark.usefixtures("cli_env")
def test_an_unreachable_server_is_one_line_and_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    url = f"http://user:s3cret@127.0.0.1:{free_port()}"
    plan = str(_plan(tmp_path, url))
    capsys.readouterr()
    assert main(["backup", "--plan", plan]) == 1
    err = capsys.readouterr().err
    failed = next(line for line in err.splitlines() if line.startswith("FAILED"))
    assert "cannot list the registered models at MLflow http://127.0.0.1:" in failed
    assert failed.endswith("the server is not reachable")
    assert "Try: " in err
    assert "s3cret" not in err
