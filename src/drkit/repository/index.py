"""Pack headers and the index: where each blob is stored.

A pack is ``blob_1 | ... | blob_n | encrypted header | header_len (u32 LE)``; the header
plaintext is ``n`` records ``type (u8) | id (32) | length (u32) | raw_length (u32)``.
An index object is zstd-compressed JSON listing packs and their blobs.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import zstandard

from drkit.repository.codec import BlobType

_RECORD = struct.Struct("<B32sII")
_TRAILER = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class BlobEntry:
    """One blob inside a pack."""

    type: BlobType
    id: bytes
    offset: int
    length: int
    raw_length: int


@dataclass(frozen=True, slots=True)
class Location:
    pack: str
    entry: BlobEntry


def encode_header(entries: Iterable[BlobEntry]) -> bytes:
    return b"".join(_RECORD.pack(e.type, e.id, e.length, e.raw_length) for e in entries)


def decode_header(plain: bytes) -> list[BlobEntry]:
    if len(plain) % _RECORD.size:
        raise ValueError("pack header length is not a multiple of the record size")
    out: list[BlobEntry] = []
    offset = 0
    for t, bid, length, raw in _RECORD.iter_unpack(plain):
        out.append(BlobEntry(BlobType(t), bid, offset, length, raw))
        offset += length
    return out


def trailer(header_len: int) -> bytes:
    return _TRAILER.pack(header_len)


def parse_trailer(tail: bytes) -> int:
    return int(_TRAILER.unpack(tail[-4:])[0])


class Index:
    """The union of all index objects: blob id -> location (first one wins)."""

    def __init__(self) -> None:
        self._blobs: dict[bytes, Location] = {}
        self._packs: dict[str, list[BlobEntry]] = {}

    def add_pack(self, pack: str, entries: Iterable[BlobEntry]) -> None:
        lst = self._packs.setdefault(pack, [])
        for e in entries:
            lst.append(e)
            self._blobs.setdefault(e.id, Location(pack, e))

    def remove_pack(self, pack: str) -> None:
        entries = self._packs.pop(pack, [])
        gone = {e.id for e in entries}
        for bid in gone:
            loc = self._blobs.get(bid)
            if loc is not None and loc.pack == pack:
                del self._blobs[bid]
                for other, lst in self._packs.items():
                    match = next((e for e in lst if e.id == bid), None)
                    if match is not None:
                        self._blobs[bid] = Location(other, match)
                        break

    def has(self, bid: bytes) -> bool:
        return bid in self._blobs

    def lookup(self, bid: bytes) -> Location | None:
        return self._blobs.get(bid)

    def packs(self) -> dict[str, list[BlobEntry]]:
        return self._packs

    def blob_ids(self) -> Iterator[bytes]:
        return iter(self._blobs)

    def __len__(self) -> int:
        return len(self._blobs)


def encode_index(packs: dict[str, list[BlobEntry]]) -> bytes:
    doc = {
        "version": 1,
        "packs": [
            {
                "id": pack,
                "blobs": [[int(e.type), e.id.hex(), e.offset, e.length, e.raw_length] for e in es],
            }
            for pack, es in sorted(packs.items())
        ],
    }
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return zstandard.ZstdCompressor(level=3).compress(raw)


def decode_index(data: bytes) -> dict[str, list[BlobEntry]]:
    doc = json.loads(zstandard.ZstdDecompressor().decompress(data))
    out: dict[str, list[BlobEntry]] = {}
    for p in doc["packs"]:
        out[p["id"]] = [
            BlobEntry(BlobType(t), bytes.fromhex(h), off, ln, raw)
            for t, h, off, ln, raw in p["blobs"]
        ]
    return out
