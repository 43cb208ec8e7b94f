"""The repository: keys, encrypted objects, the blob store with its packer and index.

Higher-level operations (file-tree backup/restore, check, forget, prune, copy, repair)
live in their own modules and use the methods here. Format: docs/repository-format.md.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import blake3
import zstandard

from drkit.connectors.objectstore.base import ObjectInfo, ObjectStore
from drkit.errors import (
    CorruptObject,
    ObjectNotFound,
    RepositoryError,
    RepositoryExists,
    RepositoryNotFound,
    WrongPassword,
)
from drkit.repository import codec
from drkit.repository.codec import BlobType
from drkit.repository.crypto import (
    Cipher,
    DecryptError,
    KdfParams,
    MasterKey,
    unwrap_master_key,
)
from drkit.repository.index import (
    BlobEntry,
    Index,
    decode_header,
    decode_index,
    encode_header,
    encode_index,
    parse_trailer,
    trailer,
)
from drkit.repository.keyring import Keyring, write_key
from drkit.repository.layout import is_own_key, name_of
from drkit.repository.locks import LockInfo, RepoLock, parse_lock
from drkit.repository.records import Records
from drkit.repository.snapshot import canonical, now_iso
from drkit.repository.tuning import drop_cache, tune_allocator

#: New repositories' format; 2 adds patched chunks (docs/repository-format.md section 3).
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
PACK_TARGET = 16 * 1024 * 1024
#: Packs written before an index object is flushed mid-backup.
INDEX_EVERY_PACKS = 64


def pack_key(name: str) -> str:
    return f"data/{name[:2]}/{name}"


@dataclass(slots=True)
class _PackBuf:
    type: BlobType
    parts: list[bytes | bytearray] = field(default_factory=list)
    entries: list[BlobEntry] = field(default_factory=list)
    size: int = 0


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class Repository(Records, Keyring):
    """An opened repository. Use :meth:`init` or :meth:`open`; close with :meth:`close`."""

    def __init__(self, store: ObjectStore, master: MasterKey, key_id: str, config: dict[str, Any]):
        tune_allocator()
        self.store = store
        self._master = master
        self.cipher = Cipher(master.enc_key)
        self.key_id = key_id
        self.config = config
        self.id: str = str(config["id"])
        self.index = Index()
        self.workers = default_workers()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="drkit-blob")
        self._io = ThreadPoolExecutor(
            max(1, store.capabilities.max_concurrency), thread_name_prefix="drkit-io"
        )
        self._lock = threading.Lock()
        self._bufs: dict[BlobType, _PackBuf] = {}
        self._pending: set[bytes] = set()
        self._uploads: list[Future[None]] = []
        self._unindexed: dict[str, list[BlobEntry]] = {}
        self._index_lock = threading.Lock()
        self.loaded_index_keys: set[str] = set()
        self.stats = {"new_blobs": 0, "new_bytes_stored": 0, "packs_written": 0}
        self.load_index()

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        store: ObjectStore,
        password: str,
        *,
        kdf: KdfParams | None = None,
        master: MasterKey | None = None,
        force: bool = False,
        version: int = FORMAT_VERSION,
    ) -> Repository:
        """Create a repository in an empty location (format ``version``).

        Raises :class:`RepositoryExists` when a repository is there, and when the
        location holds anything else unless ``force`` (the files stay; ``check`` reports
        them as foreign, ``prune``/``repair`` never touch them). An init interrupted
        between its key and its config is finished when run again with the same
        password (I1).
        """
        if version not in SUPPORTED_VERSIONS:
            raise RepositoryError(f"repository format version {version} is not supported")
        if store.exists("config"):
            raise RepositoryExists(f"a repository already exists at {store.url}")
        keys = [i.key for i in store.list("keys/") if is_own_key(i.key)]
        foreign = next((i.key for i in store.list("") if not i.key.startswith("keys/")), None)
        if foreign is not None and not force:
            raise RepositoryExists(
                f"{store.url} is not empty (it holds {foreign})",
                hint="choose an empty location, or pass --force to create the repository "
                "next to the files (they are left alone)",
            )
        key_id: str | None = None
        if keys:  # an interrupted init: finish it with the key it wrote
            for key in keys:
                try:
                    master = unwrap_master_key(store.get(key), password)
                except (DecryptError, ValueError, ObjectNotFound):
                    continue
                key_id = name_of(key)
                break
            else:
                raise RepositoryExists(
                    f"{store.url} holds keys but no config (an interrupted `repo init`?) "
                    "and no key opens with this password",
                    hint="run `drkit repo init` again with the password of the interrupted init",
                )
        master = master or MasterKey.generate()
        config = {
            "version": version,
            "id": secrets.token_hex(32),
            "created": now_iso(),
            "chunker": {"algorithm": "fastcdc", "min": 256 << 10, "avg": 1 << 20, "max": 4 << 20},
            "pack_size": PACK_TARGET,
            "hash": "blake3",
            "cipher": "aes-256-gcm-xnonce",
        }
        if key_id is None:
            key_id = write_key(store, master, password, kdf or KdfParams())
        store.put("config", Cipher(master.enc_key).encrypt(canonical(config)))
        return cls(store, master, key_id, config)

    @classmethod
    def open(cls, store: ObjectStore, password: str) -> Repository:
        """Open with a password; raises :class:`RepositoryNotFound` / :class:`WrongPassword`,
        or :class:`CorruptObject` when no key opens and a key file is damaged (K3)."""
        keys = [i.key for i in store.list("keys/") if is_own_key(i.key)]
        try:
            raw_config = store.get("config")
        except ObjectNotFound as exc:
            if keys:
                raise RepositoryNotFound(
                    f"no repository at {store.url}: it holds keys but no config "
                    "(an interrupted `repo init` or `copy --init`?)",
                    hint="run the same `drkit repo init` (or `copy --init`) again with the "
                    "same password: it finishes the interrupted init",
                ) from exc
            raise RepositoryNotFound(f"no repository at {store.url} (no config object)") from exc
        damaged: list[str] = []
        for key in keys:
            try:
                data = store.get(key)
            except ObjectNotFound:
                continue
            if blake3.blake3(data).hexdigest() != name_of(key):
                damaged.append(key)
            try:
                master = unwrap_master_key(data, password)
            except (DecryptError, ValueError):
                continue
            try:
                config = json.loads(Cipher(master.enc_key).decrypt(raw_config))
            except DecryptError as exc:
                raise CorruptObject(
                    f"repository config at {store.url} fails authentication", object_id="config"
                ) from exc
            if config.get("version") not in SUPPORTED_VERSIONS:
                raise RepositoryError(
                    f"repository format version {config.get('version')} is not supported "
                    f"(this drkit reads versions 1 to {FORMAT_VERSION})",
                    hint="open it with the newer drkit that created it",
                )
            return cls(store, master, name_of(key), config)
        if damaged:
            raise CorruptObject(
                f"no key in the repository at {store.url} opens with this password, and "
                f"{len(damaged)} key file(s) are damaged ({damaged[0]}: content does not "
                "match its name)",
                object_id=damaged[0],
                hint="restore the key file from a copy of the repository's keys/ (a replica "
                "made by `copy --init` has its own keys), or try another password",
            )
        raise WrongPassword(f"no key in the repository at {store.url} opens with this password")

    @property
    def version(self) -> int:
        return int(self.config["version"])

    @property
    def patches(self) -> bool:  # may hold patched chunks (format 2)
        return self.version >= 2

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self._io.shutdown(wait=True)

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Repository({self.store.url!r}, id={self.id[:8]})"

    # --- locks -------------------------------------------------------------------------

    def list_locks(self) -> list[LockInfo]:
        out = []
        for info in self.own("locks/"):
            try:
                plain = self.cipher.decrypt(self.store.get(info.key))
                out.append(parse_lock(info.key, plain))
            except (ObjectNotFound, DecryptError, ValueError, KeyError):
                continue
        return out

    def lock(self, *, exclusive: bool) -> RepoLock:
        """Take a shared or exclusive lock (L1); use as a context manager (L2).

        Once the lock is held the index is reloaded (W3): a prune that ran since this
        repository was opened may have removed blobs the old index still listed. Callers
        of :meth:`write_blob` outside ``backup_path``/``snapshot_files`` hold this lock
        (shared) around their writes and the snapshot that references them.
        """
        held = RepoLock(
            exclusive,
            lambda key, doc: self.store.put(key, self.cipher.encrypt(canonical(doc))),
            self.store.delete,
            self.list_locks,
        )
        with self._lock:
            idle = not self._bufs and not self._uploads and not self._unindexed
        if idle:
            try:
                self.load_index()
            except BaseException:
                held.release()
                raise
        return held

    def remove_stale_locks(self, *, all_locks: bool = False) -> int:
        n = 0
        for lk in self.list_locks():
            if all_locks or lk.stale():
                self.store.delete(lk.key)
                n += 1
        return n

    # --- index -------------------------------------------------------------------------

    def load_index(self) -> list[str]:
        """(Re)load every index object; returns the keys of unreadable ones."""
        self.index = Index()
        self.loaded_index_keys = set()
        bad = []
        for info in self.own("index/"):
            try:
                packs = self.read_index_object(info.key)
            except (CorruptObject, ObjectNotFound):
                bad.append(info.key)
                continue
            for pack, entries in packs.items():
                self.index.add_pack(pack, entries)
            self.loaded_index_keys.add(info.key)
        return bad

    def read_index_object(self, key: str) -> dict[str, list[BlobEntry]]:
        stored = self.store.get(key)
        if blake3.blake3(stored).hexdigest() != key.rsplit("/", 1)[-1]:
            raise CorruptObject(f"{key}: content does not match its name", object_id=key)
        try:
            return decode_index(self.cipher.decrypt(stored))
        except (DecryptError, ValueError, KeyError, zstandard.ZstdError) as exc:
            raise CorruptObject(f"{key}: unreadable index ({exc})", object_id=key) from exc

    def write_index_object(self, packs: dict[str, list[BlobEntry]]) -> str:
        stored = self.cipher.encrypt(encode_index(packs))
        name = blake3.blake3(stored).hexdigest()
        self.store.put(f"index/{name}", stored)
        self.loaded_index_keys.add(f"index/{name}")
        return f"index/{name}"

    # --- blobs -------------------------------------------------------------------------

    def known(self, bid: bytes) -> bool:
        """True when the blob is indexed or already queued in this process (W3)."""
        return self.index.has(bid) or bid in self._pending

    def encode_blob(
        self, data: bytes | memoryview, mode: int
    ) -> tuple[bytes, bytes | bytearray | None]:
        """Hash a blob, and compress+encrypt it unless it is already known (thread safe)."""
        bid = codec.blob_id(data)
        if self.known(bid):
            return bid, None
        return bid, codec.encode(data, mode, self.cipher)

    def add_encoded(
        self, btype: BlobType, bid: bytes, stored: bytes | bytearray, raw_length: int
    ) -> bool:
        """Queue an encoded blob into the current pack; False when it was a duplicate."""
        seal: _PackBuf | None = None
        with self._lock:
            if self.index.has(bid) or bid in self._pending:
                return False
            self._pending.add(bid)
            buf = self._bufs.setdefault(btype, _PackBuf(btype))
            buf.entries.append(BlobEntry(btype, bid, buf.size, len(stored), raw_length))
            buf.parts.append(stored)
            buf.size += len(stored)
            self.stats["new_blobs"] += 1
            self.stats["new_bytes_stored"] += len(stored)
            if buf.size >= PACK_TARGET:
                seal = self._bufs.pop(btype)
        if seal is not None:
            self._submit_pack(seal)
        return True

    def write_blob(
        self, data: bytes | memoryview, btype: BlobType = BlobType.DATA, *, mode: int | None = None
    ) -> str:
        """Store a blob (deduplicated); returns its hex id. Durable after :meth:`flush`."""
        if mode is None:
            mode = codec.choose_mode(data[: codec.SAMPLE])
        bid, stored = self.encode_blob(data, mode)
        if stored is not None:
            self.add_encoded(btype, bid, stored, len(data))
        return bid.hex()

    def _submit_pack(self, buf: _PackBuf) -> None:
        # Bound memory: at most max_concurrency + 1 sealed packs in flight.
        limit = max(1, self.store.capabilities.max_concurrency) + 1
        while True:
            with self._lock:
                running = [f for f in self._uploads if not f.done()]
                done = [f for f in self._uploads if f.done()]
                self._uploads = running
            for f in done:
                f.result()
            if len(running) < limit:
                break
            running[0].result()
        fut = self._io.submit(self._upload_pack, buf)
        with self._lock:
            self._uploads.append(fut)

    def _upload_pack(self, buf: _PackBuf) -> None:
        header = self.cipher.encrypt(encode_header(buf.entries))
        data = b"".join([*buf.parts, header, trailer(len(header))])
        # the blobs live on in ``data``: free them now, not after the (fsync'd) put, so
        # each pack in flight holds 16 MiB, not 32 (fresh pages cost ~10 us each here)
        buf.parts.clear()
        name = blake3.blake3(data).hexdigest()
        self.store.put(pack_key(name), data)  # W1: the pack is stored before any index
        self._drop_cache(pack_key(name))
        write_index = None
        with self._lock:
            self.index.add_pack(name, buf.entries)
            for e in buf.entries:
                self._pending.discard(e.id)
            self._unindexed[name] = buf.entries
            self.stats["packs_written"] += 1
            if len(self._unindexed) >= INDEX_EVERY_PACKS:
                write_index, self._unindexed = self._unindexed, {}
        if write_index:
            with self._index_lock:
                self.write_index_object(write_index)

    def _drop_cache(self, key: str) -> None:
        """Free the page cache of a pack just stored on this machine's disk (see
        :func:`drkit.repository.tuning.drop_cache`); other stores are left alone."""
        if self.store.capabilities.local:
            drop_cache(self.store.local_path(key))

    def flush(self) -> None:
        """Write partial packs, wait for every upload, then write the index (W1, W2)."""
        with self._lock:
            bufs = list(self._bufs.values())
            self._bufs.clear()
        for buf in bufs:
            self._submit_pack(buf)
        while True:
            with self._lock:
                uploads, self._uploads = self._uploads, []
            if not uploads:
                break
            for f in uploads:
                f.result()
        with self._lock:
            pending, self._unindexed = self._unindexed, {}
        if pending:
            with self._index_lock:
                self.write_index_object(pending)

    def read_pack_header(self, name: str, size: int | None = None) -> list[BlobEntry]:
        key = pack_key(name)
        if size is None:
            size = self.store.stat(key).size
        if size < 4:
            raise CorruptObject(f"{key}: truncated pack", object_id=key)
        hlen = parse_trailer(self.store.get_range(key, size - 4, 4))
        if hlen + 4 > size:
            raise CorruptObject(f"{key}: bad pack header length", object_id=key)
        try:
            plain = self.cipher.decrypt(self.store.get_range(key, size - 4 - hlen, hlen))
            return decode_header(plain)
        except (DecryptError, ValueError) as exc:
            raise CorruptObject(f"{key}: unreadable pack header ({exc})", object_id=key) from exc

    def decode_verified(self, pack: str, entry: BlobEntry, stored: bytes | memoryview) -> bytes:
        """Decrypt, decompress and check a blob's hash (B1)."""
        plain = self.verify_blob(pack, entry, stored)
        return plain if isinstance(plain, bytes) else bytes(plain)

    def verify_blob(
        self, pack: str, entry: BlobEntry, stored: bytes | memoryview
    ) -> bytes | memoryview:
        """:meth:`decode_verified` without making the plaintext a ``bytes`` object
        (restore and check only write or drop it: one copy less)."""
        key = pack_key(pack)
        what = f"blob {entry.id.hex()[:16]} in pack {key}"
        if len(stored) != entry.length:
            raise CorruptObject(f"{what}: truncated", object_id=key)
        try:
            plain = codec.decode(stored, entry.raw_length, self.cipher)
        except (DecryptError, ValueError) as exc:
            raise CorruptObject(f"{what}: fails authentication ({exc})", object_id=key) from exc
        if len(plain) != entry.raw_length or codec.blob_id(plain) != entry.id:
            raise CorruptObject(f"{what}: content does not match its hash", object_id=key)
        return plain

    def read_blob(self, blob: str | bytes) -> bytes:
        """Return a blob's plaintext, verified; raises CorruptObject naming the pack."""
        bid = bytes.fromhex(blob) if isinstance(blob, str) else blob
        loc = self.index.lookup(bid)
        if loc is None:
            raise CorruptObject(f"blob {bid.hex()[:16]} is not in the index", object_id=bid.hex())
        key = pack_key(loc.pack)
        try:
            stored = self.store.get_range(key, loc.entry.offset, loc.entry.length)
        except ObjectNotFound as exc:
            raise CorruptObject(f"pack {key} is missing", object_id=key) from exc
        return self.decode_verified(loc.pack, loc.entry, stored)

    def blob_exists(self, blob: str | bytes) -> bool:
        bid = bytes.fromhex(blob) if isinstance(blob, str) else blob
        return self.known(bid)

    def list_packs(self) -> dict[str, int]:
        """Stored packs: name -> size."""
        return {name_of(i.key): i.size for i in self.own("data/")}

    def own(self, prefix: str) -> Iterator[ObjectInfo]:
        """The repository's own objects under ``prefix`` (foreign names are skipped)."""
        return (i for i in self.store.list(prefix) if is_own_key(i.key))

    def delete_objects(self, keys: Iterable[str]) -> None:
        """Delete objects; only ever names of the repository's own forms (R3)."""
        for key in keys:
            if not is_own_key(key):
                raise RepositoryError(f"refusing to delete {key}: not a repository object")
            self.store.delete(key)
