"""The batched record hasher gives every record the digest blake3-py gives it, whatever
the record's length against BLAKE3's 1 KiB chunks, and it is built where it can be."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.base import (
    CollectionConfig,
    Metric,
    VectorField,
    make_batch,
)
from drkit.replication.vectors import layout, native


def _batch(
    rng: np.random.Generator, n: int, dims: tuple[int, ...]
) -> tuple[CollectionConfig, pa.RecordBatch]:
    fields = tuple(
        VectorField(f"v{i}" if len(dims) > 1 else "", d, Metric.COSINE) for i, d in enumerate(dims)
    )
    cfg = CollectionConfig(name="c", vectors=fields)
    ids = [f"r{i}-" + "é" * int(rng.integers(0, 40)) for i in range(n)]
    vecs = {f.name: rng.standard_normal((n, f.dimension)).astype(np.float32) for f in fields}
    # payloads from empty to past a chunk, so records end anywhere in a chunk
    payloads = [{"p": "x" * int(rng.integers(0, 1500))} for _ in range(n)]
    docs = [None if i % 4 == 0 else "d" * int(rng.integers(0, 300)) for i in range(n)]
    return cfg, make_batch(cfg, ids, vecs, payloads, docs)


def _python(
    cfg: CollectionConfig, batch: pa.RecordBatch, monkeypatch: pytest.MonkeyPatch
) -> list[bytes]:
    with monkeypatch.context() as m:
        m.setattr(native, "_HASH", None)
        return layout.record_hashes(cfg, batch)


@pytest.mark.skipif(not native.available(), reason="the install built no native hasher")
@pytest.mark.parametrize(
    ("n", "dims"), [(1, (768,)), (63, (256,)), (65, (1,)), (200, (768, 16)), (130, ())]
)
def test_native_digests_are_blake3_py_digests(
    n: int, dims: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(n)
    if not dims:  # no vector at all: the prefix alone, under a chunk or over
        cfg, batch = _batch(rng, n, (4,))
        cfg = CollectionConfig(name="c", vectors=())
        batch = batch.drop_columns(["vector"])
    else:
        cfg, batch = _batch(rng, n, dims)
    got = layout.record_hashes(cfg, batch)
    assert got == _python(cfg, batch, monkeypatch)
    assert len(set(got)) == n
    assert all(len(h) == layout.HASH_BYTES for h in got)
    # a slice of a batch (Arrow offsets not at zero) hashes the same records the same
    assert layout.record_hashes(cfg, batch.slice(1)) == got[1:]


def test_record_lengths_around_every_chunk_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Vectors of 1..1100 floats put a record's end on, before and after 1 KiB edges."""
    if not native.available():
        pytest.skip("the install built no native hasher")
    rng = np.random.default_rng(7)
    for dim in [*range(240, 262), *range(490, 520), 1, 1100]:
        cfg, batch = _batch(rng, 3, (dim,))
        assert layout.record_hashes(cfg, batch) == _python(cfg, batch, monkeypatch), dim


@pytest.mark.skipif(
    sys.platform != "linux"
    or platform.machine() not in ("x86_64", "aarch64")
    or shutil.which("cc") is None,
    reason="the native hasher is built on Linux x86_64/aarch64 with a C compiler",
)
def test_the_install_built_the_native_hasher() -> None:
    assert native.LIBRARY.exists(), "hatch_build.py did not build the record hasher"
    assert native.available()
    off = subprocess.run(
        [
            sys.executable,
            "-c",
            "from drkit.replication.vectors import native as n; print(n.available())",
        ],
        env={"DRKIT_NATIVE": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert off.stdout.strip() == "False"
