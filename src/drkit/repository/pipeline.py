"""The blob-encoding pipeline: hash, compress and encrypt blobs in the repository's pool
with a bounded window, finishing them in order; and the chunking parameters."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from typing import Any

from fastcdc import fastcdc

from drkit.repository import codec
from drkit.repository.codec import BlobType
from drkit.repository.patches import BaseMap, Entry, Patched, patch
from drkit.repository.repo import Repository

SMALL_FILE = 1 << 20
#: Large files are read in segments of this size (chunk boundaries carry over).
SEGMENT = 16 << 20
CDC_MIN, CDC_AVG, CDC_MAX = 256 << 10, 1 << 20, 4 << 20

#: Blobs smaller than this are encoded on the calling thread: for a few KiB the hand-off
#: to a pool thread (future, queue, wake-up, GIL ping-pong: ~100 us) costs several times
#: the work itself (~25 us), and 3,000 small files made up a fifth of a backup's CPU time.
INLINE_BELOW = 64 << 10

_Encoded = tuple[bytes, bytes | bytearray | None]
_Result = _Encoded | Patched


class _Done:
    """An already computed result, queued like a future so blobs still finish in order."""

    __slots__ = ("value",)

    def __init__(self, value: _Encoded) -> None:
        self.value = value

    def result(self) -> _Result:
        return self.value


def _encode(repo: Repository, data: bytes | memoryview, mode: int | None) -> _Encoded:
    # sampling the mode in the pool thread: it was a fifth of a vector export's main thread
    m = mode if mode is not None else codec.choose_mode(data[: codec.SAMPLE])
    return repo.encode_blob(data, m)


def _encode_against(
    repo: Repository, data: bytes | memoryview, mode: int, base: BaseMap, at: int
) -> _Result:
    """A chunk that is new to the repository is patched against the parent's version of
    its file (:mod:`drkit.repository.patches`) when that stores less."""
    bid = codec.blob_id(data)
    if repo.known(bid):
        return bid, None
    patched = patch(repo, data, bid, mode, base, at)
    if patched is not None:
        return patched
    return bid, codec.encode(data, mode, repo.cipher)


class BlobPipeline:
    """Encodes blobs in the pool with a bounded window; finishes them in order."""

    def __init__(self, repo: Repository, *, window: int | None = None) -> None:
        self.repo = repo
        self.window = window if window is not None else repo.workers * 8 + 4
        self.q: deque[tuple[Future[_Result] | _Done, int, list[Any], int]] = deque()
        self.submitted = 0
        self.finished = 0

    def submit(
        self,
        data: bytes | memoryview,
        mode: int | None,
        sink: list[Any],
        idx: int,
        base: tuple[BaseMap, int] | None = None,
    ) -> None:
        """Queue ``data`` to be stored as ``sink[idx]``; ``mode`` None: the codec mode is
        sampled from the blob's first 64 KiB where it is encoded (in the pool thread).
        ``base``: the parent's version of the file and ``data``'s offset in it (format 2:
        the chunk may become a patched chunk)."""
        fut: Future[_Result] | _Done
        if base is not None and mode is not None and len(data) >= INLINE_BELOW:
            fut = self.repo.pool.submit(_encode_against, self.repo, data, mode, *base)
        elif len(data) < INLINE_BELOW:
            fut = _Done(_encode(self.repo, data, mode))
        else:
            fut = self.repo.pool.submit(_encode, self.repo, data, mode)
        self.q.append((fut, len(data), sink, idx))
        self.submitted += 1
        while len(self.q) > self.window:
            self._finish_one()

    def wait_for(self, count: int) -> None:
        """Finish blobs until the first ``count`` submitted ones are done."""
        while self.finished < count and self.q:
            self._finish_one()

    def _finish_one(self) -> None:
        self.finished += 1
        fut, n, sink, idx = self.q.popleft()
        res = fut.result()
        if isinstance(res, Patched):
            for pid, pstored, pn in res.blobs:
                if pstored is not None:
                    self.repo.add_encoded(BlobType.DATA, pid, pstored, pn)
            sink[idx] = res.entry
            return
        bid, stored = res
        if stored is not None:
            self.repo.add_encoded(BlobType.DATA, bid, stored, n)
        sink[idx] = bid.hex()

    def drain(self) -> None:
        while self.q:
            self._finish_one()


def chunk_bytes(repo: Repository, data: bytes) -> list[str]:
    if not data:
        return []
    mode = codec.choose_mode(data[: codec.SAMPLE])
    if len(data) <= SMALL_FILE:
        return [repo.write_blob(data, mode=mode)]
    view = memoryview(data)
    pipe = BlobPipeline(repo)
    chunks = list(fastcdc(view, CDC_MIN, CDC_AVG, CDC_MAX))
    sink: list[Entry] = [""] * len(chunks)
    for i, ch in enumerate(chunks):
        pipe.submit(view[ch.offset : ch.offset + ch.length], mode, sink, i)
    pipe.drain()
    return [str(e) for e in sink]
