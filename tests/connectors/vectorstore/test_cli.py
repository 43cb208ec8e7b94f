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


def test_backup_and_restore_handle_vector_components(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`drkit backup COMPONENT` snapshots a vector store incrementally; `drkit restore`
    restores vector snapshots into a component, a new collection or another engine."""
    first = run(capsys, ["backup", "kb"])
    assert isinstance(first, list)
    assert [(s["component"], s["collection"], s["kind"]) for s in first] == [
        ("kb", "docs", "vectors")
    ]
    assert first[0]["added"] == 80
    source = open_vector_store(f"lancedb://{tmp_path / 'lance'}")
    cfg = source.describe("docs")
    source.import_batches("docs", [records(cfg, 2, flat=True, seed=9, start=500)])
    source.close()
    second = run(capsys, ["backup", "kb"])
    assert isinstance(second, list)
    assert (second[0]["added"], second[0]["unchanged"], second[0]["parent"]) == (
        2,
        80,
        first[0]["id"],
    )

    # the plan component, under a new collection name; `latest` means kb's newest
    same = run(capsys, ["restore", "latest", "--to", "kb", "--collection", "docs_copy"])
    assert isinstance(same, dict)
    assert (same["kind"], same["collection"], same["records"]) == ("vectors", "docs_copy", 82)
    # another engine, by URL
    chroma = f"chroma://{tmp_path / 'chroma'}"
    other = run(capsys, ["restore", first[0]["id"][:12], "--to", chroma])
    assert isinstance(other, dict)
    assert other["records"] == 80
    target = open_vector_store(chroma)
    assert target.count("docs") == 80
    target.close()

    run(capsys, ["restore", "latest", "--to", "kb"], code=2)  # docs exists: refused
    run(capsys, ["restore", "latest", "--to", str(tmp_path / "dir")], code=2)  # not a store
    assert not (tmp_path / "dir").exists()


def test_restore_refuses_an_unmappable_config_before_writing(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_vector_store(f"lancedb://{tmp_path / 'lance'}")
    cfg = config("multi", named=("title",))  # two vectors: Chroma holds one per record
    store.create(cfg)
    store.import_batches("multi", [records(cfg, 10, flat=True)])
    store.close()
    made = run(capsys, ["backup", "kb", "--collection", "multi"])
    assert isinstance(made, list)
    chroma = f"chroma://{tmp_path / 'chroma'}"
    capsys.readouterr()
    assert main(["restore", made[0]["id"], "--to", chroma]) == 2
    assert "named vectors" in capsys.readouterr().err
    target = open_vector_store(chroma)
    assert target.list_collections() == []  # nothing written
    target.close()


def test_backup_without_arguments_takes_what_is_due(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(plan.read_text())
    data["vector_stores"][0]["schedule"] = "1h"
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.jsonl").write_text("{}\n")
    data["datasets"] = [{"name": "ds", "path": "ds", "tier": "critical"}]  # no schedule
    plan.write_text(yaml.safe_dump(data))
    first = run(capsys, ["backup"])
    assert isinstance(first, list)
    assert sorted((s["component"], s["kind"]) for s in first) == [
        ("ds", "files"),
        ("kb", "vectors"),
    ]
    again = run(capsys, ["backup"])  # kb was snapshotted within its hour; ds has no schedule
    assert isinstance(again, list)
    assert [s["component"] for s in again] == ["ds"]
    everything = run(capsys, ["backup", "--all"])
    assert isinstance(everything, list)
    assert len(everything) == 2
    file_snap = everything[0]["id"] if everything[0]["kind"] == "files" else everything[1]["id"]
    run(capsys, ["restore", file_snap, "--to", "kb"], code=2)  # files into a vector store
    run(capsys, ["restore", file_snap, "--to", "out", "--collection", "x"], code=2)
    restored = run(capsys, ["restore", file_snap, "--to", "out"])
    assert isinstance(restored, dict)
    assert (restored["kind"], restored["files"]) == ("files", 1)
    run(capsys, ["backup", "lancedb:///nowhere"], code=2)  # a URL needs --component


def test_drills_on_a_plan_with_only_a_vector_store(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """data-corruption runs on a plan whose only data is a collection; region-outage
    fails with its reason when no replica outside the region holds it."""
    run(capsys, ["drill", "run", "data-corruption"], code=1)  # nothing verified yet
    run(capsys, ["backup", "kb"])
    run(capsys, ["verify", "kb"])
    out = run(capsys, ["drill", "run", "data-corruption", "--seed", "2"])
    assert isinstance(out, dict)
    assert out["verdict"] == "pass", out["reasons"]
    assert out["metrics"]["records_deleted"] == 8  # 10% of 80
    assert out["metrics"]["writes_lost"] == 0  # nothing written since the snapshot
    lost = run(capsys, ["drill", "run", "region-outage"], code=1)
    assert isinstance(lost, dict)
    assert any("no replica outside region 'eu-west' holds 'kb'" in r for r in lost["reasons"])
    store = open_vector_store(f"lancedb://{tmp_path / 'lance'}")
    assert store.list_collections() == ["docs"]  # sandboxes and scratch restores dropped
    store.close()


def test_data_corruption_on_an_engine_that_normalises_vectors(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Qdrant re-normalises cosine vectors on import, so copies differ from the snapshot
    by float rounding: only the records the fault hit count as damage, and the restored
    collection passes within tolerance."""
    url = f"qdrant+local://{tmp_path / 'qdrant'}"
    store = open_vector_store(url)
    cfg = config("docs")
    store.create(cfg)
    store.import_batches("docs", [records(cfg, 40, flat=True, seed=5)])
    store.close()
    data = yaml.safe_load(plan.read_text())
    data["vector_stores"][0]["engine"] = url
    plan.write_text(yaml.safe_dump(data))
    run(capsys, ["backup", "kb"])
    run(capsys, ["verify", "kb"])
    out = run(capsys, ["drill", "run", "data-corruption", "--seed", "1"])
    assert isinstance(out, dict)
    assert out["verdict"] == "pass", out["reasons"]
    m = out["metrics"]
    assert m["records_damaged_detected"] == m["records_deleted"] + m["vectors_overwritten"] == 8
    check = next(s for s in out["steps"] if s["phase"] == "verify")
    assert check["status"] == "ok"
    # a restore into Qdrant local moves the collection's directory instead of copying it
    # (issue 10 item 7): the points are no longer re-normalised on the way, so nothing
    # differs by rounding any more (this was > 0 while restore copied the collection)
    assert check["data"]["tolerated"] == 0


def test_leftovers_of_killed_runs_are_listed_removed_and_cleaned_by_the_next_run(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drkit.connectors.vectorstore.transfer import temp_name

    lance = yaml.safe_load(plan.read_text())["vector_stores"][0]["engine"]
    assert main(["backup", "kb", "--json"]) == 0
    cfg = config("docs")
    # what killed runs leave: a restore into docs2 and into docs_v2 (their temporary
    # collections), a restore test of docs (the load on the way to its scratch copy)
    killed = {
        "docs2": temp_name("docs2"),
        "docs_v2": temp_name("docs_v2"),
        "verify": temp_name(temp_name("verify_docs")),
    }
    with open_vector_store(lance) as store:
        for name in killed.values():
            store.create(cfg, name)
            store.import_batches(name, [records(cfg, 5, flat=True, seed=9)])
    out = run(capsys, ["snapshot", "leftovers", "kb"])
    assert isinstance(out, dict)
    assert (out["target"], out["leftovers"], out["removed"]) == (
        lance,
        sorted(killed.values()),
        [],
    )

    run(capsys, ["restore", "latest", "--to", "kb", "--collection", "docs2"])
    checks = run(capsys, ["verify", "kb"])
    assert isinstance(checks, list)
    assert f"removed {killed['verify']!r}" in checks[0]["notes"][0]
    out = run(capsys, ["snapshot", "leftovers", "kb"])
    assert out["leftovers"] == [killed["docs_v2"]]  # only another name's leftover is left

    out = run(capsys, ["snapshot", "leftovers", "kb", "--remove"])
    assert out["removed"] == [killed["docs_v2"]]
    with open_vector_store(lance) as store:
        assert sorted(store.list_collections()) == ["docs", "docs2"]
    capsys.readouterr()
    assert main(["snapshot", "leftovers", "kb"]) == 0
    assert "no drkit leftovers" in capsys.readouterr().out


def test_restore_latest_of_a_component_with_several_collections(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lance = yaml.safe_load(plan.read_text())["vector_stores"][0]["engine"]
    with open_vector_store(lance) as store:
        cfg = config("faq")
        store.create(cfg)
        store.import_batches("faq", [records(cfg, 7, flat=True, seed=4)])
    run(capsys, ["backup", "kb", "--collection", "faq"])
    run(capsys, ["backup", "kb", "--collection", "docs"])  # the newest snapshot of kb
    with open_vector_store(lance) as store:
        store.drop("faq")
    out = run(capsys, ["restore", "latest", "-c", "kb", "--to", "kb", "--collection", "faq"])
    assert isinstance(out, dict)
    assert (out["collection"], out["records"]) == ("faq", 7)  # not docs' 80 records
    capsys.readouterr()
    code = main(["restore", "latest", "-c", "kb", "--to", "kb", "--collection", "other"])
    assert code == 2
    assert "snapshots of 2 collections (docs, faq)" in capsys.readouterr().err


def test_restore_replace_repairs_a_live_collection(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drkit.replication.vectors import collection_fingerprint

    lance = yaml.safe_load(plan.read_text())["vector_stores"][0]["engine"]
    run(capsys, ["backup", "kb"])
    with open_vector_store(lance) as store:
        good = collection_fingerprint(store, "docs")
        store.delete_ids("docs", sorted(good)[:8])
    # without --replace the existing collection is refused
    run(capsys, ["restore", "latest", "--to", "kb"], code=2)
    out = run(capsys, ["restore", "latest", "--to", "kb", "--replace"])
    assert isinstance(out, dict)
    assert out["records"] == 80
    assert out["replaced"]["action"] == "replaced"
    with open_vector_store(lance) as store:
        assert collection_fingerprint(store, "docs") == good
        assert store.list_collections() == ["docs"]
    capsys.readouterr()
    assert main(["snapshot", "restore", "latest", "--to", "kb", "--replace"]) == 0
    said = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert "replaced docs at" in said
    # LanceDB on a local path: one exchange of the table directories
    assert "every checksum verified, swapped in by one exchange of directories (atomic)" in said
    assert out["replaced"]["atomic"] is True
    assert (out["replaced"]["swap"], out["replaced"]["swap_method"]) == ("atomic", "exchange")


def test_cross_engine_restore_reports_what_it_cannot_carry_and_dry_run_writes_nothing(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run(capsys, ["snapshot", "create", "kb"])
    assert isinstance(created, list)
    sid = created[0]["snapshot"]
    qdrant = f"qdrant+local://{tmp_path / 'q'}"

    planned = run(capsys, ["restore", sid, "--to", qdrant, "--dry-run"])
    assert isinstance(planned, dict)
    assert planned["dry_run"] is True
    assert planned["records"] == 80
    assert planned["plan"]["source_engine"] == "lancedb"
    assert planned["plan"]["target_engine"] == "qdrant"
    assert planned["plan"]["exists"] is False
    assert any("typed columns" in n for n in planned["not_carried"])
    target = open_vector_store(qdrant)
    assert target.list_collections() == []  # nothing written
    target.close()

    capsys.readouterr()
    assert main(["snapshot", "restore", sid, "--to", qdrant, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "dry run, nothing written" in text
    assert "not carried:" in text
    assert "typed columns" in text

    restored = run(capsys, ["restore", sid, "--to", qdrant])
    assert isinstance(restored, dict)
    assert restored["dry_run"] is False
    assert restored["not_carried"] == planned["not_carried"]
    # the same engine carries everything
    same = run(capsys, ["restore", sid, "--to", "kb", "--collection", "docs2", "--dry-run"])
    assert isinstance(same, dict)
    assert same["not_carried"] == []
    # an existing collection is refused by a dry run as by the restore
    run(capsys, ["restore", sid, "--to", qdrant, "--dry-run"], code=2)
    again = run(capsys, ["restore", sid, "--to", qdrant, "--dry-run", "--replace"])
    assert isinstance(again, dict)
    assert again["plan"]["exists"] is True
    assert again["plan"]["swap"].startswith("not atomic: the live name is a collection, not")

    # the application addresses an alias: --replace moves it, atomically, and says so
    with open_vector_store(qdrant) as target:
        target.move_alias("live", "docs")
    behind = ["restore", sid, "--to", qdrant, "--collection", "live", "--replace"]
    planned = run(capsys, [*behind, "--dry-run"])
    assert isinstance(planned, dict)
    assert (planned["plan"]["exists"], planned["plan"]["swap"]) == (True, "atomic")
    capsys.readouterr()
    assert main(["snapshot", "restore", sid, "--to", qdrant, "--collection", "live"]) == 2
    assert "exists" in capsys.readouterr().err  # an alias is refused as a collection is
    swapped = run(capsys, behind)
    assert isinstance(swapped, dict)
    assert (swapped["replaced"]["swap"], swapped["replaced"]["old"]) == ("atomic", "docs")
    capsys.readouterr()
    assert (
        main(["snapshot", "restore", sid, "--to", qdrant, "--collection", "live", "--replace"]) == 0
    )
    said = " ".join(capsys.readouterr().out.split())
    assert "swapped in by moving the alias (atomic)" in said


def test_verify_of_a_reembedded_collection_fails_and_is_recorded(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10 item 9: a dimension mismatch is a failed restore test (exit 1, recorded
    in the state), not bad input (exit 2)."""
    created = run(capsys, ["snapshot", "create", "kb"])
    assert isinstance(created, list)
    store = open_vector_store(f"lancedb://{tmp_path / 'lance'}")
    store.drop("docs")
    cfg = config("docs", dim=4)  # re-embedded with another model
    store.create(cfg)
    store.import_batches("docs", [records(cfg, 80, flat=True, seed=3)])
    store.close()
    out = run(capsys, ["verify", "kb"], code=1)
    assert isinstance(out, list)
    assert out[0]["ok"] is False
    assert out[0]["live"] == "reshaped"
    assert "re-embedded" in out[0]["problems"][0]
    state = StateStore(tmp_path / "state.db")
    [record] = state.verifications("kb")
    assert not record.ok
    assert record.snapshot == created[0]["snapshot"]
    state.close()


def test_dry_run_of_a_file_tree_snapshot_is_refused(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(plan.read_text())
    data["datasets"] = [{"name": "train", "path": "./train", "tier": "critical"}]
    plan.write_text(yaml.safe_dump(data))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.txt").write_text("a\n")
    run(capsys, ["backup", "train"])
    capsys.readouterr()
    target = tmp_path / "out"
    argv = ["restore", "latest", "--component", "train", "--to", str(target), "--dry-run"]
    assert main(argv) == 2
    assert "--dry-run applies to vector snapshots" in capsys.readouterr().err
    assert not target.exists()
