"""drkit snapshot create/restore/export and drkit verify, through main(), with a plan."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from drkit.cli.main import main
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.state.store import StateStore

from .data import as_dict, config, records


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lance = f"lancedb://{tmp_path / 'lance'}"
    store = open_vector_store(lance)
    cfg = config("docs")
    store.create(cfg)
    store.import_batches("docs", [records(cfg, 80, flat=True, seed=3)])
    doc = {
        "version": 1,
        "name": "cli-test",
        "tiers": {"critical": {"rto": "5m", "rpo": "15m"}},
        "repositories": {
            "primary": {
                "name": "primary",
                "url": (tmp_path / "repo").as_uri(),
                "region": "eu-west",
            },
        },
        "vector_stores": [
            {"name": "kb", "tier": "critical", "engine": lance, "collections": ["docs"]}
        ],
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("DRKIT_PASSWORD", "cli password")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.delenv("DRKIT_REPO", raising=False)
    monkeypatch.delenv("DRKIT_PASSWORD_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["repo", "init", "--json"]) == 0
    return path


def run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> object:
    capsys.readouterr()
    assert main([*argv, "--json"]) == code
    out = capsys.readouterr().out
    return json.loads(out) if out.strip() else None


def test_snapshot_restore_export_verify(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run(capsys, ["snapshot", "create", "kb"])
    assert isinstance(created, list)
    assert created[0]["records"] == 80
    assert created[0]["warning"] is None
    sid = created[0]["snapshot"]

    milvus = f"milvus-lite://{tmp_path / 'm.db'}"
    restored = run(capsys, ["snapshot", "restore", sid[:10], "--to", milvus, "--collection", "d2"])
    assert isinstance(restored, dict)
    assert restored["records"] == 80
    target = open_vector_store(milvus)
    source = open_vector_store(f"lancedb://{tmp_path / 'lance'}")
    assert as_dict(target.export("d2")) == as_dict(source.export("docs"))
    target.close()

    exported = run(capsys, ["snapshot", "export", sid, "--format", "parquet", "out"])
    assert isinstance(exported, dict)
    assert pq.read_table(tmp_path / "out" / "records.parquet").num_rows == 80

    verified = run(capsys, ["verify", "kb"])
    assert isinstance(verified, list)
    assert verified[0]["ok"] is True
    state = StateStore(tmp_path / "state.db")
    [record] = state.verifications("kb")
    assert record.ok
    assert record.snapshot == sid
    assert record.duration_s > 0
    state.close()

    listed = run(capsys, ["snapshots"])
    assert isinstance(listed, list)
    assert listed[0]["verified"] is True


def test_bad_input_exits_2(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, ["snapshot", "create", "nope"], code=2)
    run(capsys, ["snapshot", "export", "latest", "x", "--format", "csv"], code=2)
    run(capsys, ["verify", "kb"], code=2)  # no snapshot yet
    run(capsys, ["snapshot", "create", "kb"])
    run(capsys, ["snapshot", "restore", "latest", "--to", "kb"], code=2)  # exists
