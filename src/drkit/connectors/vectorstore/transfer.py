"""Moving collections between stores: config mapping and atomic loads.

:func:`map_config` decides up front whether a collection fits a target engine (and how:
a single named vector becomes the default vector of an engine without named vectors;
index parameters only survive into the same engine). :func:`load_collection` is the
one way records are written under a final name: into a temporary collection first,
then renamed (atomic where the engine can) or copied over, so a failure never leaves
a half-filled collection under the final name.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import replace

import pyarrow as pa

from drkit.connectors.vectorstore.base import VECTOR, CollectionConfig, VectorStore, exists_error
from drkit.errors import IncompatibleTarget

log = logging.getLogger("drkit.vectorstore")
TMP_MARK = "_drkit_tmp_"


def map_config(
    config: CollectionConfig, store: VectorStore
) -> tuple[CollectionConfig, dict[str, str]]:
    """``config`` as ``store``'s engine will hold it, and the column renames that needs.

    Raises :class:`IncompatibleTarget` (nothing written) when it cannot be mapped.
    """
    vectors = config.vectors
    renames: dict[str, str] = {}
    if not store.capabilities.named_vectors and len(vectors) == 1 and vectors[0].name:
        renames[vectors[0].column] = VECTOR
        vectors = (replace(vectors[0], name=""),)
    if config.engine != store.engine:
        vectors = tuple(replace(v, index={}) for v in vectors)
    mapped = replace(config, vectors=vectors)
    store.check_compatible(mapped)
    return mapped, renames


#: what an engine's recorded schema holds that another engine does not rebuild
_ENGINE_SCHEMA = {
    "pgvector": ("ddl", "the table's typed columns, id type, constraints and indexes"),
    "lancedb": ("arrow_schema", "the table's typed columns"),
    "milvus": ("schema", "the declared fields, primary key type and partitions"),
    "chroma": ("metadata", "the collection metadata"),
}


def not_carried(config: CollectionConfig, store: VectorStore) -> list[str]:
    """What a load of ``config`` into ``store`` cannot carry, one sentence each.

    Empty for a restore into the same engine. Callers report these before writing
    (:func:`load_collection` logs them); the records themselves are always carried.
    """
    notes: list[str] = []
    if not store.capabilities.named_vectors and len(config.vectors) == 1 and config.vectors[0].name:
        notes.append(
            f"named vector {config.vectors[0].name!r} becomes {store.engine}'s default vector"
        )
    if config.engine == store.engine:
        return notes
    for v in config.vectors:
        if v.index:
            notes.append(
                f"index parameters of vector {v.name or 'default'!r} ({config.engine}: "
                f"{dict(v.index)}) are not carried into {store.engine}; it builds its own index"
            )
    for key, what in (("sparse_vectors", "sparse vectors"), ("multivectors", "multivectors")):
        if key == "sparse_vectors" and store.capabilities.sparse_vectors:
            notes += _sparse_modifiers(config, store)
            continue  # carried as the target's own sparse vectors
        if config.options.get(key):
            names = ", ".join(sorted(config.options[key]))
            notes.append(
                f"{what} ({names}) stay in the payload in {store.engine} "
                f"(as __drkit_{'sparse' if key == 'sparse_vectors' else 'multivector'}.NAME)"
            )
    if config.engine == "milvus" and config.options.get("partitions"):
        notes.append(
            f"the partition of each record (milvus: {', '.join(config.options['partitions'])}) "
            f"stays in the payload in {store.engine} (as __drkit_partition)"
        )
    key, what = _ENGINE_SCHEMA.get(config.engine, ("", ""))
    if key and config.options.get(key):
        notes.append(
            f"{what} ({config.engine}) are not rebuilt in {store.engine}: their values "
            "travel in the payload"
        )
    return notes


def _sparse_modifiers(config: CollectionConfig, store: VectorStore) -> list[str]:
    """Qdrant's sparse-vector modifiers (``idf``): the values travel, the modifier not."""
    return [
        f"the {spec['modifier']} modifier of sparse vector {sname!r} ({config.engine}) is not "
        f"carried into {store.engine}: the stored values are, a search there weighs them as "
        "stored"
        for sname, spec in sorted(config.options.get("sparse_vectors", {}).items())
        if isinstance(spec, dict) and spec.get("modifier")
    ]


def rename_columns(
    batches: Iterable[pa.RecordBatch], renames: dict[str, str]
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if renames:
            batch = batch.rename_columns([renames.get(n, n) for n in batch.schema.names])
        yield batch


def temp_stem(name: str) -> str:
    """The part of :func:`temp_name` derived from ``name``."""
    stem = "".join(c if c.isalnum() and c.isascii() else "_" for c in name)[:40] or "c"
    return stem if stem[0].isalpha() else "c" + stem


def temp_name(name: str) -> str:
    """A temporary collection name valid in every engine (letters, digits, ``_``):
    ``temp_stem(name) + TMP_MARK + 8 hex digits``."""
    return f"{temp_stem(name)}{TMP_MARK}{secrets.token_hex(4)}"


def load_collection(
    store: VectorStore,
    config: CollectionConfig,
    batches: Iterable[pa.RecordBatch],
    name: str,
    *,
    expected_rows: int | None = None,
) -> int:
    """Create ``name`` in ``store`` holding ``batches``, all or nothing; return its count.

    Checks the mapping and that ``name`` does not exist before writing anything
    (:class:`IncompatibleTarget`, :class:`CollectionExists`). Records go into a
    temporary collection, whose count must equal the rows written (and
    ``expected_rows`` if given); then it is renamed to ``name`` (atomic where
    ``capabilities.atomic_rename``) or copied into ``name``. On any failure the
    temporary collection, and a partly copied ``name``, are dropped.
    """
    mapped, renames = map_config(config, store)
    store.check_name(name)
    if name in store.list_collections() or name in store.aliases():
        raise exists_error(name)
    for note in not_carried(config, store):
        log.warning("loading %r into %s: %s", name, store.engine, note)
    tmp = temp_name(name)
    store.create(mapped, tmp)
    try:
        written = store.import_batches(tmp, rename_columns(batches, renames))
        count = store.count(tmp)
        if count != written or (expected_rows is not None and count != expected_rows):
            raise IncompatibleTarget(
                f"loading {name!r}: wrote {written} records, expected "
                f"{expected_rows if expected_rows is not None else written}, "
                f"the engine counts {count} (duplicate ids?)"
            )
        store.rename(tmp, name)
    except BaseException:
        store.drop(tmp, missing_ok=True)
        raise
    return count


def copy_collection(
    src: VectorStore,
    name: str,
    dst: VectorStore,
    new_name: str | None = None,
    *,
    batch_size: int = 1000,
) -> int:
    """Copy collection ``name`` of ``src`` into ``dst`` (atomically, see load_collection)."""
    config = src.describe(name)
    map_config(config, dst)  # refuse before reading anything
    stream = src.export(name, batch_size=batch_size)
    return load_collection(dst, config, stream, new_name or name, expected_rows=None)
