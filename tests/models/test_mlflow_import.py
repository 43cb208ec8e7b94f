"""``drkit model import mlflow``: registered models, versions, aliases, tags and the
datasets a version's run logged come into drkit's registry and lineage; a second import
changes nothing; bad input is a clean error.

Against MLflow's own SQLite store (``sqlite:///`` tracking URI: MLflow's real backend, in
this process) and against a real ``mlflow server`` with a SQLite backend that the test
starts on 127.0.0.1 (its start-up, schema migrations included, takes 30-75 s here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.models.mlflow_servers import mlflow_servers
from tests.servers import free_port

from drkit.cli.main import main


@pytest.fixture(scope="module")
def mlflow_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('mlflow-store') / 'mlflow.db'}"
    _seed(url)
    return url


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_servers([tmp_path_factory.mktemp("mlflow")]) as [url]:
        _seed(url)
        yield url


def _seed(url: str) -> None:
    """Two versions of ``assistant``, each from a run that logged its training data, and a
    model whose name drkit cannot hold."""
    import mlflow
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(url)
    client = MlflowClient(url, url)
    client.create_registered_model("assistant", tags={"team": "ml"}, description="the bot")
    client.create_registered_model("has spaces")
    mlflow.set_experiment("train")
    for n in (1, 2):
        with mlflow.start_run() as run:
            source = HTTPDatasetSource(f"https://data.example/train/v{n}.jsonl")
            mlflow.log_input(MetaDataset(source, name="train"), context="training")
        client.create_model_version(
            "assistant",
            f"runs:/{run.info.run_id}/model",
            run_id=run.info.run_id,
            tags={"drkit.upstream.openai": f"ft:gpt-4.1:acme:{n}", "stage": f"s{n}"},
            description=f"release {n}",
            await_creation_for=0,
        )
    client.set_registered_model_alias("assistant", "champion", "2")
    client.set_registered_model_alias("assistant", "previous", "1")


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert got == code, captured.err
    return json.loads(captured.out) if captured.out.strip() else captured.err


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_import_from_a_real_mlflow_server(
    mlflow_server: str, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_import(mlflow_server, capsys)


def test_import_from_an_mlflow_sqlite_store(
    mlflow_sqlite: str, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_import(mlflow_sqlite, capsys)


def _check_import(mlflow_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    # a version drkit registered itself under MLflow's label is never replaced
    _run(capsys, ["model", "register", "other", "1"])
    got = _run(capsys, ["model", "import", "mlflow", "--tracking-uri", mlflow_server])
    assert got["imported_versions"] == ["assistant@1", "assistant@2"]
    assert sorted(got["imported_aliases"]) == [
        "assistant:champion -> 2",
        "assistant:previous -> 1",
    ]
    assert [s["what"] for s in got["skipped"]] == ["has spaces"]

    two = _run(capsys, ["model", "show", "assistant@2"])
    assert two["source"] == "mlflow"
    assert two["upstream"] == {"openai": "ft:gpt-4.1:acme:2"}
    assert two["description"] == "release 2"
    assert two["tags"]["stage"] == "s2"
    assert two["tags"]["mlflow.source"].startswith("runs:/")
    [trained] = two["trained_on"]
    assert trained["dataset"] == "train"
    assert trained["snapshot"]  # MLflow's digest of the logged dataset

    history = _run(capsys, ["model", "alias", "history", "assistant"])["history"]
    assert {(h["alias"], h["to"], h["action"]) for h in history} == {
        ("champion", "2", "import"),
        ("previous", "1", "import"),
    }
    impact = _run(capsys, ["lineage", "impact", f"train@{trained['snapshot']}"])
    assert [v["version"] for v in impact["versions"]] == ["2"]
    assert impact["aliases_now"] == [{"model": "assistant", "alias": "champion", "version": "2"}]

    # again: nothing new, nothing changed
    again = _run(capsys, ["model", "import", "mlflow", "--tracking-uri", mlflow_server])
    assert again["imported_versions"] == []
    assert again["imported_aliases"] == []
    assert len(again["unchanged"]) == 4
    assert len(_run(capsys, ["model", "alias", "history", "assistant"])["history"]) == 2

    # bad input: an unknown model (exit 2), an unreachable server (exit 1), nothing written
    err = _run(
        capsys,
        ["model", "import", "mlflow", "--tracking-uri", mlflow_server, "--model", "nope"],
        code=2,
    )
    assert "no registered model 'nope'" in err["error"]["message"]
    assert "assistant, has spaces" in err["error"]["hint"]


def test_an_unreachable_mlflow_is_a_clean_error(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    url = f"http://127.0.0.1:{free_port()}"
    err = _run(capsys, ["model", "import", "mlflow", "--tracking-uri", url], code=1)
    assert f"cannot read the MLflow registry at {url}" in err["error"]["message"]
