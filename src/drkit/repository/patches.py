"""Patched chunks: a changed chunk stored as its few changed bytes plus slices of the
parent's blobs (docs/repository-format.md section 3, "Patched chunks"; format 2).

A file rewritten in place (an mmap'd index, an embedding matrix) keeps its chunk
boundaries, but with ~1 MiB chunks a 1 % edit in scattered 4 KiB blocks touches nearly
every chunk: stored whole, that costs ~77x the edited bytes. Instead, each new chunk is
compared with the parent snapshot's bytes at the same file offsets, in 256-byte blocks;
when at most half of it differs it is written as a content entry
``{"id": chunk id, "parts": [[blob, offset, length], ...]}``: the changed runs become new
(small) blobs, everything else is a slice of a blob the parent already references. Parts
always name blobs, never other patched chunks, so reading one never chains.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np

from drkit.errors import CorruptObject
from drkit.repository import codec
from drkit.repository.repo import Repository

#: Blocks compared between the new chunk and the parent's bytes.
BLOCK = 256
#: Changed runs closer than this are stored as one (a part costs ~250 bytes of metadata).
MERGE_GAP = 1024
#: A chunk with more parts than this per MiB (at least this many) is stored whole again:
#: bounds fragmentation, and the file's listing in its tree at ~5.4 KiB per MiB.
MAX_PARTS = 64

Entry = str | dict[str, Any]
Part = tuple[str, int, int]


@dataclass(slots=True)
class Patched:
    """A patched chunk's content entry and the new blobs it needs: (id, stored, length);
    ``stored`` is None for a blob the repository already holds."""

    entry: dict[str, Any]
    blobs: list[tuple[bytes, bytes | bytearray | None, int]]


def entry_parts(repo: Repository, entry: Entry) -> list[Part] | None:
    """The slices an entry is made of; None when a blob is not in the index."""
    if isinstance(entry, str):
        loc = repo.index.lookup(bytes.fromhex(entry))
        return None if loc is None else [(entry, 0, loc.entry.raw_length)]
    return [(str(b), int(o), int(n)) for b, o, n in entry["parts"]]


class BaseMap:
    """The parent snapshot's version of one file: which blob slices hold which offsets."""

    def __init__(self, starts: list[int], parts: list[Part], reuse: dict[str, dict[str, Any]]):
        self.starts = starts  # file offset of each part, ascending
        self.parts = parts
        self.size = starts[-1] + parts[-1][2] if parts else 0
        self.reuse = reuse  # the parent's patched chunks by chunk id

    @classmethod
    def build(cls, repo: Repository, content: list[Entry]) -> BaseMap | None:
        starts: list[int] = []
        parts: list[Part] = []
        reuse: dict[str, dict[str, Any]] = {}
        at = 0
        for entry in content:
            ps = entry_parts(repo, entry)
            if ps is None:
                return None
            if isinstance(entry, dict):
                reuse[str(entry["id"])] = entry
            for p in ps:
                starts.append(at)
                parts.append(p)
                at += p[2]
        return cls(starts, parts, reuse) if parts else None

    def slices(self, lo: int, hi: int) -> list[Part]:
        """The blob slices that hold file bytes ``[lo, hi)`` (``hi <= size``)."""
        out: list[Part] = []
        i = bisect.bisect_right(self.starts, lo) - 1
        while lo < hi:
            start, (bid, off, n) = self.starts[i], self.parts[i]
            skip = lo - start
            take = min(n - skip, hi - lo)
            out.append((bid, off + skip, take))
            lo += take
            i += 1
        return out

    def read(self, repo: Repository, lo: int, hi: int) -> bytes:
        """The parent's bytes ``[lo, hi)``, every blob verified (B1) and read once."""
        cache: dict[str, bytes] = {}
        out = bytearray()
        for bid, off, n in self.slices(lo, hi):
            data = cache.get(bid)
            if data is None:
                data = cache[bid] = repo.read_blob(bid)
            if off + n > len(data):
                raise CorruptObject(f"a part of blob {bid[:16]} is out of range", object_id=bid)
            out += data[off : off + n]
        return bytes(out)


def changed_runs(new: bytes | memoryview, old: bytes) -> list[tuple[int, int]]:
    """``[start, end)`` runs of the ``BLOCK``-byte blocks where ``new`` and ``old``
    (the same length) differ; runs less than ``MERGE_GAP`` apart are joined."""
    n = len(old)
    a = np.frombuffer(new, dtype=np.uint8, count=n)
    b = np.frombuffer(old, dtype=np.uint8)
    full = n // BLOCK * BLOCK
    dirty = (a[:full] != b[:full]).reshape(-1, BLOCK).any(axis=1)
    if full < n:
        dirty = np.append(dirty, bool((a[full:] != b[full:]).any()))
    idx = np.flatnonzero(dirty)
    runs: list[tuple[int, int]] = []
    if not len(idx):
        return runs
    # boundaries where consecutive dirty blocks are more than a gap apart
    gap_blocks = MERGE_GAP // BLOCK
    breaks = np.flatnonzero(np.diff(idx) > gap_blocks + 1)
    first = np.concatenate(([0], breaks + 1))
    last = np.concatenate((breaks, [len(idx) - 1]))
    for f, la in zip(first.tolist(), last.tolist(), strict=True):
        runs.append((int(idx[f]) * BLOCK, min(n, (int(idx[la]) + 1) * BLOCK)))
    return runs


def max_parts(size: int) -> int:
    """PC2's bound for a chunk of ``size`` bytes: 64 parts per MiB, at least 64."""
    return max(MAX_PARTS, MAX_PARTS * size >> 20)


def _merge(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    for bid, off, n in parts:
        if out and out[-1][0] == bid and out[-1][1] + out[-1][2] == off:
            out[-1] = (bid, out[-1][1], out[-1][2] + n)
        else:
            out.append((bid, off, n))
    return out


def patch(
    repo: Repository, data: bytes | memoryview, bid: bytes, mode: int, base: BaseMap, at: int
) -> Patched | None:
    """``data`` (file offset ``at``, id ``bid``) as a patched chunk against ``base``, or
    None when more than half of it is new, it would need more than :func:`max_parts`
    parts even compacted, or the parent's bytes cannot be read (then it is stored
    whole)."""
    size = len(data)
    reused = base.reuse.get(bid.hex())
    if reused is not None and all(repo.known(bytes.fromhex(p[0])) for p in reused["parts"]):
        return Patched(dict(reused), [])  # unchanged since the parent: nothing to read
    covered = min(size, base.size - at)
    if covered * 2 < size:
        return None
    try:
        old = base.read(repo, at, at + covered)
    except CorruptObject:
        return None  # a damaged parent: never build on it
    runs = changed_runs(data[:covered], old)
    if covered < size:  # appended bytes
        if runs and covered - runs[-1][1] < MERGE_GAP:
            runs[-1] = (runs[-1][0], size)
        else:
            runs.append((covered, size))
    if sum(e - s for s, e in runs) * 2 > size:
        return None
    parts, blobs = _assemble(repo, data, mode, base, at, runs)
    limit = max_parts(size)
    if len(parts) > limit:
        # compaction: keep the slices of the blob that holds most of the chunk and store
        # the rest anew in at most limit / 4 runs (a fraction of the chunk, not all of it)
        runs = _coarsen(_outside_main(parts, size), limit // 4)
        if sum(e - s for s, e in runs) * 2 > size:
            return None
        parts, blobs = _assemble(repo, data, mode, base, at, runs)
        if len(parts) > limit:
            return None
    return Patched({"id": bid.hex(), "parts": [list(p) for p in parts]}, blobs)


def _assemble(
    repo: Repository,
    data: bytes | memoryview,
    mode: int,
    base: BaseMap,
    at: int,
    runs: list[tuple[int, int]],
) -> tuple[list[Part], list[tuple[bytes, bytes | bytearray | None, int]]]:
    """The parts of ``data`` with ``runs`` stored as new blobs, the rest sliced from
    ``base``; and those new blobs, encoded (None when already stored)."""
    size = len(data)
    parts: list[Part] = []
    blobs: list[tuple[bytes, bytes | bytearray | None, int]] = []
    pos = 0
    for s, e in runs:
        if s > pos:
            parts += base.slices(at + pos, at + s)
        piece = data[s:e]
        pid = codec.blob_id(piece)
        stored = None if repo.known(pid) else codec.encode(piece, mode, repo.cipher)
        blobs.append((pid, stored, e - s))
        parts.append((pid.hex(), 0, e - s))
        pos = e
    if pos < size:
        parts += base.slices(at + pos, at + size)
    return _merge(parts), blobs


def _outside_main(parts: list[Part], size: int) -> list[tuple[int, int]]:
    """The ranges of a chunk that are not slices of the blob holding most of it."""
    held: dict[str, int] = {}
    for bid, _, n in parts:
        held[bid] = held.get(bid, 0) + n
    main = max(held, key=lambda b: held[b])
    runs: list[tuple[int, int]] = []
    pos = 0
    for bid, _, n in parts:
        if bid != main:
            if runs and runs[-1][1] == pos:
                runs[-1] = (runs[-1][0], pos + n)
            else:
                runs.append((pos, pos + n))
        pos += n
    return runs


def _coarsen(runs: list[tuple[int, int]], most: int) -> list[tuple[int, int]]:
    """``runs`` joined across their smallest gaps until at most ``most`` are left."""
    if len(runs) <= most:
        return runs
    gaps = sorted(runs[i + 1][0] - runs[i][1] for i in range(len(runs) - 1))
    limit = gaps[len(runs) - most - 1]
    out = [runs[0]]
    joins = len(runs) - most
    for s, e in runs[1:]:
        if joins and s - out[-1][1] <= limit:
            out[-1] = (out[-1][0], e)
            joins -= 1
        else:
            out.append((s, e))
    return out
