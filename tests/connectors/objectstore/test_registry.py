"""open_store: schemes, plain paths, plugins through the entry-point group."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drkit.connectors.objectstore.base import ObjectStore
from drkit.connectors.objectstore.cloud import AzureStore, GCSStore
from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.objectstore.memory import MemoryStore
from drkit.connectors.objectstore.registry import BUILTIN, open_store, schemes
from drkit.connectors.objectstore.retrying import Retrying
from drkit.connectors.objectstore.s3 import S3Store
from drkit.errors import UsageError


def _inner(store: ObjectStore) -> ObjectStore:
    assert isinstance(store, Retrying)
    return store.inner


def test_local_paths_and_file_urls(tmp_path: Path) -> None:
    for url in (str(tmp_path), tmp_path.as_uri()):
        store = _inner(open_store(url))
        assert isinstance(store, LocalStore)
        assert store.root == tmp_path
    store = open_store(str(tmp_path), retry=False)
    assert isinstance(store, LocalStore)
    store.put("a/b", b"x")
    assert open_store(tmp_path.as_uri()).get("a/b") == b"x"


def test_memory_urls_share_by_name() -> None:
    try:
        open_store("mem://shared-test").put("k", b"v")
        assert open_store("mem://shared-test").get("k") == b"v"
        assert isinstance(_inner(open_store("mem://")), MemoryStore)
        assert not open_store("mem://").exists("k")  # unnamed: private
    finally:
        MemoryStore.forget("shared-test")


def test_cloud_schemes_open_without_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
    s3 = _inner(open_store("s3://bucket/pre/fix?region=eu-west-1"))
    assert isinstance(s3, S3Store)
    assert s3.url == "s3://bucket/pre/fix?region=eu-west-1"
    gs = _inner(open_store("gs://bucket/prefix"))
    assert isinstance(gs, GCSStore)
    assert gs.url == "gs://bucket/prefix"
    assert gs.capabilities.atomic_create  # native: no probe, no I/O
    az = _inner(open_store("az://container/prefix"))
    assert isinstance(az, AzureStore)
    assert az.url == "az://container/prefix"


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        open_store("ftp://host/path")
    assert "ftp://" in str(info.value)
    assert info.value.hint is not None
    for scheme in BUILTIN:
        assert f"{scheme}://" in info.value.hint
    assert info.value.exit_code == 2


def test_empty_url() -> None:
    with pytest.raises(UsageError):
        open_store("  ")


_PLUGIN = """
from drkit.connectors.objectstore.memory import MemoryStore

def open_demo(url):
    store = MemoryStore()
    store.url = url
    return store

def hijack(url):
    raise AssertionError("a plugin must not replace a built-in scheme")
"""


def test_third_party_scheme_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution on sys.path declaring ``drkit.objectstores`` entry points."""
    (tmp_path / "demo_drkit_plugin.py").write_text(_PLUGIN)
    info = tmp_path / "demo_drkit_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-drkit-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[drkit.objectstores]\n"
        "demo = demo_drkit_plugin:open_demo\n"
        "file = demo_drkit_plugin:hijack\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert schemes()["demo"] == "demo_drkit_plugin:open_demo"
    store = open_store("demo://anything")
    assert store.url == "demo://anything"
    store.put("k", b"v")
    assert store.get("k") == b"v"
    assert isinstance(_inner(open_store(str(tmp_path))), LocalStore)  # built-in wins
    monkeypatch.delitem(sys.modules, "demo_drkit_plugin", raising=False)


def test_core_works_without_obstore(tmp_path: Path) -> None:
    """Without the s3 extra: local and memory stores work, s3:// says what to install."""
    code = f"""
import subprocess
import sys
sys.modules["obstore"] = None  # as if the package were not installed
from drkit.connectors.objectstore import open_store
from drkit.errors import UsageError
store = open_store({str(tmp_path)!r})
store.put("k", b"v")
assert store.get("k") == b"v"
try:
    open_store("s3://bucket?endpoint=http://127.0.0.1:9")
except UsageError as exc:
    print("UsageError:", exc, "| hint:", exc.hint)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "UsageError: object storage URLs need the obstore package" in result.stdout
    assert "drkit[s3]" in result.stdout
