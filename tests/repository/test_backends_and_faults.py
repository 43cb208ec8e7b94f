"""The repository on S3 (a real moto server on 127.0.0.1), between backends, under
injected faults (full disk, dead endpoint, flipped bits in transit, transient errors),
and with two processes backing up into one repository at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.repository.conftest import PASSWORD, make_tree, tree_state
from tests.repository.crash_child import PASSWORD as CHILD_PASSWORD
from tests.repository.stores import open_test_store
from tests.servers import MOTO_ACCESS_KEY, MOTO_SECRET_KEY, create_bucket, start_moto

from drkit.cli.main import main
from drkit.connectors.objectstore.base import ObjectStore
from drkit.connectors.objectstore.faulty import Faulty
from drkit.connectors.objectstore.retrying import Retrying
from drkit.connectors.objectstore.s3 import S3Store
from drkit.errors import CorruptObject, StorageFull, StoreUnreachable
from drkit.repository import KdfParams, Repository, backup_path, backup_store, restore
from drkit.repository.maintenance import check
from drkit.repository.replica import copy

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "drkit-repo-tests"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_moto(tmp_path_factory.mktemp("moto")) as server:
        create_bucket(server.endpoint, BUCKET)
        yield server.endpoint


def _s3(endpoint: str) -> ObjectStore:
    return S3Store.from_url(
        f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}?endpoint={endpoint}&allow_http=true",
        access_key_id=MOTO_ACCESS_KEY,
        secret_access_key=MOTO_SECRET_KEY,
    )


def test_backup_restore_copy_on_s3(moto: str, sample_tree: Path, tmp_path: Path) -> None:
    with Repository.init(_s3(moto), PASSWORD, kdf=KdfParams.fast()) as s3repo:
        snap = backup_path(s3repo, sample_tree, component="c")
        assert check(s3repo, read_data=True).ok
        restore(s3repo, snap, tmp_path / "from-s3")
        assert tree_state(tmp_path / "from-s3") == tree_state(sample_tree)
        local = Repository.init(open_test_store(tmp_path / "local"), "other", kdf=KdfParams.fast())
        assert copy(s3repo, local).snapshots_copied == [snap.id]
        back = Repository.init(_s3(moto), "third", kdf=KdfParams.fast())
        assert copy(local, back).snapshots_copied == [snap.id]
        restore(back, snap.id, tmp_path / "round-trip")
        assert tree_state(tmp_path / "round-trip") == tree_state(sample_tree)
        local.close()
        back.close()


def test_copy_init_creates_the_bucket(
    moto: str, sample_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drkit.cli.main import main

    monkeypatch.setenv("DRKIT_PASSWORD", PASSWORD)
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_KEY)
    local = str(tmp_path / "local")
    assert main(["repo", "init", "--repo", local]) == 0
    assert main(["backup", str(sample_tree), "--repo", local]) == 0
    bucket = f"new-{uuid.uuid4().hex[:8]}"
    url = f"s3://{bucket}/drkit?endpoint={moto}&allow_http=true"
    assert main(["copy", "--to", url, "--repo", local]) == 1  # no bucket, no --init
    assert main(["copy", "--to", url, "--init", "--repo", local]) == 0
    with Repository.open(S3Store.from_url(url), PASSWORD) as r:
        assert len(r.snapshots()) == 1
        assert check(r, read_data=True).ok


def test_full_disk_fails_clearly_and_loses_nothing(tmp_path: Path) -> None:
    real = open_test_store(tmp_path / "repo")
    src = make_tree(tmp_path / "src")
    with Repository.init(real, PASSWORD, kdf=KdfParams.fast()) as r:
        first = backup_path(r, src, component="c")
    used = sum(i.size for i in real.list())
    (src / "more.bin").write_bytes(os.urandom(1 << 20))
    full = Faulty(real, full_after_bytes=100_000, prefix="data/")
    with Repository.open(full, PASSWORD) as r, pytest.raises(StorageFull):
        backup_path(r, src, component="c")
    assert sum(i.size for i in real.list()) < used + 100_000
    with Repository.open(real, PASSWORD) as r:
        assert [s.id for s in r.snapshots()] == [first.id]
        assert check(r, read_data=True).ok
        assert list(real.list("locks/")) == []


def test_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    real = open_test_store(tmp_path / "repo")
    Repository.init(real, PASSWORD, kdf=KdfParams.fast()).close()
    with pytest.raises(StoreUnreachable):
        Repository.open(Faulty(real, unreachable=True), PASSWORD)


def test_bits_flipped_in_transit_are_refused(tmp_path: Path, sample_tree: Path) -> None:
    real = open_test_store(tmp_path / "repo")
    with Repository.init(real, PASSWORD, kdf=KdfParams.fast()) as r:
        snap = backup_path(r, sample_tree, component="c")
    flaky = Faulty(real, corrupt_reads=True, prefix="data/", seed=3)
    with Repository.open(flaky, PASSWORD) as r:
        with pytest.raises(CorruptObject) as err:
            restore(r, snap.id, tmp_path / "out")
        assert "data/" in str(err.value)
        assert not (tmp_path / "out").exists()
        assert not check(r, read_data=True).ok
    with Repository.open(real, PASSWORD) as r:
        assert check(r, read_data=True).ok  # the stored data was never damaged


def test_transient_errors_are_retried(tmp_path: Path, sample_tree: Path) -> None:
    real = open_test_store(tmp_path / "repo")
    shaky = Retrying(Faulty(real, fail_rate=0.2, lost_ack_rate=0.1, seed=5), base_delay=0.001)
    with Repository.init(shaky, PASSWORD, kdf=KdfParams.fast()) as r:
        snap = backup_path(r, sample_tree, component="c")
        restore(r, snap, tmp_path / "out")
        assert check(r, read_data=True).ok
    assert tree_state(tmp_path / "out") == tree_state(sample_tree)


def test_two_processes_back_up_concurrently(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    Repository.init(open_test_store(repo_dir), CHILD_PASSWORD, kdf=KdfParams.fast()).close()
    sources = {f"s{i}": make_tree(tmp_path / f"s{i}", seed=i, big=6 << 20) for i in range(2)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.repository.crash_child",
                "backup",
                str(repo_dir),
                str(src),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for src in sources.values()
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.split() == ["ready", "done"]
    with Repository.open(open_test_store(repo_dir), CHILD_PASSWORD) as r:
        assert check(r, read_data=True).ok
        snaps = r.snapshots()
        assert sorted(s.tags[0] for s in snaps) == ["s0", "s1"]
        for s in snaps:
            restore(r, s, tmp_path / f"out-{s.tags[0]}")
            assert tree_state(tmp_path / f"out-{s.tags[0]}") == tree_state(sources[s.tags[0]])


def test_backup_of_an_s3_prefix(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _s3(moto)
    objects = {
        "train/part-0.jsonl": b'{"a": 1}\n' * 1000,
        "train/part-1.f32": os.urandom(3 << 20),  # read in ranged segments
        "train/sub/empty": b"",
        "README": b"dataset card",
    }
    for key, data in objects.items():
        source.put(key, data)
    with Repository.init(open_test_store(tmp_path / "repo"), PASSWORD, kdf=KdfParams.fast()) as r:
        snap = backup_store(r, source, "train/", component="train")
        assert snap.summary["files"] == 3
        assert snap.source.endswith("/train/")
        restore(r, snap, tmp_path / "out")
        for key, data in objects.items():
            if key.startswith("train/"):
                assert (tmp_path / "out" / key.removeprefix("train/")).read_bytes() == data
        again = backup_store(r, source, "train/", component="train")
        assert again.summary["new_blobs"] == 0  # same tree, same blobs
        assert again.tree == snap.tree
    # the CLI takes an s3:// URL as a source
    url = source.url.split("?", 1)[0]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_KEY)
    monkeypatch.setenv("DRKIT_PASSWORD", PASSWORD)
    monkeypatch.setenv("DRKIT_REPO", str(tmp_path / "repo"))
    capsys.readouterr()
    code = main(["backup", f"{url}/train?endpoint={moto}&allow_http=true", "--json"])
    assert code == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out[0]["component"] == "train"
    assert out[0]["tree"] == snap.tree
