"""A backup never creates the store it backs up (issue 9 item 1).

A local store whose path does not exist (a typo, the starter plan before the store is
made) is bad input: exit 2 naming the path, nothing created. A store with no
collections, or without a collection the plan lists, is a failed backup (exit 1) unless
the plan says ``allow_empty: true``. Through the CLI (engine URL) and the plan, for the
three local engines that used to create an empty store on open.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from drkit.cli.main import main
from drkit.connectors.vectorstore.registry import open_vector_store

from .data import config, records

ENGINES = {
    "qdrant": "qdrant+local://{}",
    "lancedb": "lancedb://{}",
    "chroma": "chroma://{}",
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRKIT_PASSWORD", "missing store password")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("DRKIT_REPO", (tmp_path / "repo").as_uri())
    monkeypatch.delenv("DRKIT_PASSWORD_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["repo", "init", "--json"]) == 0
    return tmp_path


def write_plan(tmp: Path, url: str, **extra: object) -> None:
    doc = {
        "version": 1,
        "name": "missing-store",
        "tiers": {"critical": {"rto": "5m", "rpo": "15m"}},
        "repositories": {
            "primary": {"name": "primary", "url": (tmp / "repo").as_uri(), "region": "eu-west"}
        },
        "vector_stores": [{"name": "kb", "tier": "critical", "engine": url, **extra}],
    }
    (tmp / "drkit.yaml").write_text(yaml.safe_dump(doc))


def said(capsys: pytest.CaptureFixture[str]) -> str:
    """What a command printed: per-component lines on stdout, the summary on stderr."""
    out = capsys.readouterr()
    return out.out + out.err


def snapshots(capsys: pytest.CaptureFixture[str]) -> list[object]:
    capsys.readouterr()
    assert main(["snapshots", "--json"]) == 0
    out: list[object] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_missing_path_is_refused_and_not_created(
    engine: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = env / "no-such-store"
    url = ENGINES[engine].format(path)
    capsys.readouterr()
    assert main(["backup", url, "--component", "kb"]) == 2
    err = said(capsys)
    assert str(path) in err
    assert "does not exist" in err
    assert "Try:" in err
    assert not path.exists()

    write_plan(env, url)
    assert main(["backup", "kb"]) == 2
    assert str(path) in said(capsys)
    assert not path.exists()
    assert snapshots(capsys) == []


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_empty_store_fails_unless_the_plan_expects_it(
    engine: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = env / "store"
    url = ENGINES[engine].format(path)
    open_vector_store(url).close()  # an existing store without collections
    capsys.readouterr()
    assert main(["backup", url, "--component", "kb"]) == 1
    assert "has no collections" in said(capsys)

    write_plan(env, url)
    assert main(["backup", "kb"]) == 1
    assert "allow_empty" in said(capsys)

    write_plan(env, url, allow_empty=True)
    assert main(["backup", "kb", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["status"] == "nothing"
    assert snapshots(capsys) == []


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_plan_collection_that_is_absent_fails(
    engine: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = env / "store"
    url = ENGINES[engine].format(path)
    with open_vector_store(url) as store:
        cfg = config("docs")
        store.create(cfg)
        store.import_batches("docs", [records(cfg, 10, flat=True)])
    write_plan(env, url, collections=["docs", "typo"])
    capsys.readouterr()
    assert main(["backup", "kb"]) == 1
    err = said(capsys)
    assert "'typo'" in err
    assert "docs" in err
    assert snapshots(capsys) == []  # nothing written before the refusal

    write_plan(env, url, collections=["docs", "typo"], allow_empty=True)
    assert main(["backup", "kb", "--json"]) == 0
    written = [w for w in json.loads(capsys.readouterr().out) if w.get("collection")]
    assert [(w["collection"], w["records"]) for w in written] == [("docs", 10)]


def test_directory_without_a_store_is_not_written_into(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = env / "empty-dir"
    path.mkdir()
    capsys.readouterr()
    assert main(["backup", f"qdrant+local://{path}", "--component", "kb"]) == 2
    assert "is not a qdrant store" in said(capsys)
    assert list(path.iterdir()) == []


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_verify_and_leftovers_never_create_the_store(
    engine: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The siblings of backup: a restore test or a leftovers listing of a mistyped path
    is bad input, and creates nothing there."""
    path = env / "no-such-store"
    write_plan(env, ENGINES[engine].format(path))
    capsys.readouterr()
    assert main(["verify", "kb"]) == 2
    assert str(path) in said(capsys)
    assert main(["snapshot", "leftovers", "kb"]) == 2
    assert str(path) in said(capsys)
    assert not path.exists()
