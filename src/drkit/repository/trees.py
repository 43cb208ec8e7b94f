"""Tree blobs: one directory listing each (docs/repository-format.md section 6).

Linux file names are bytes. A name (or symlink target) that is not valid UTF-8 is kept
losslessly: ``name`` holds a readable form (invalid bytes as U+FFFD) and ``raw_name``
(``raw_target``) the exact bytes in base64; readers use the raw form when present.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

from drkit.errors import CorruptObject, InputError, UnsafeRestorePath
from drkit.repository import codec
from drkit.repository.codec import BlobType
from drkit.repository.repo import Repository
from drkit.repository.snapshot import Snapshot, canonical

Node = dict[str, Any]


def text_fields(field: str, value: str) -> dict[str, str]:
    """``{field: value}``, plus ``raw_<field>`` when ``value`` (from the OS, with
    surrogate escapes) is not valid UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(value)
        return {
            field: raw.decode("utf-8", "replace"),
            f"raw_{field}": base64.b64encode(raw).decode("ascii"),
        }
    return {field: value}


def node_text(node: Node, field: str) -> str:
    """The exact ``name`` or ``target`` of a node, as the OS spells it."""
    raw = node.get(f"raw_{field}")
    if raw is not None:
        return os.fsdecode(base64.b64decode(raw))
    return str(node[field])


def display(text: str) -> str:
    """A path for messages and manifests (invalid bytes as U+FFFD)."""
    return os.fsencode(text).decode("utf-8", "replace")


def content_blobs(node: Node) -> Iterator[str]:
    """The blob ids a file node's content references: each entry's blob, or every part
    of a patched chunk (format 2)."""
    for entry in node.get("content", []):
        if isinstance(entry, str):
            yield entry
        else:
            for part in entry["parts"]:
                yield str(part[0])


def read_entry(repo: Repository, entry: str | dict[str, Any]) -> bytes:
    """One content entry's bytes, every blob verified (B1); a patched chunk's parts must
    lie inside their blobs and join to its id (PC1)."""
    if isinstance(entry, str):
        return repo.read_blob(entry)
    cache: dict[str, bytes] = {}
    out = bytearray()
    for bid, off, n in entry["parts"]:
        data = cache.get(bid)
        if data is None:
            data = cache[bid] = repo.read_blob(bid)
        if off < 0 or n <= 0 or off + n > len(data):
            raise CorruptObject(f"a part of chunk {entry['id'][:16]} lies outside blob {bid[:16]}")
        out += data[off : off + n]
    if codec.blob_id(out).hex() != entry["id"]:
        raise CorruptObject(f"chunk {entry['id'][:16]} does not match its parts")
    return bytes(out)


def write_tree(repo: Repository, nodes: list[Node]) -> str:
    ordered = sorted(nodes, key=lambda n: (n["name"], n.get("raw_name", "")))
    data = canonical({"nodes": ordered})
    return repo.write_blob(data, BlobType.TREE, mode=codec.MODE_ZSTD)


def load_tree(repo: Repository, tree_id: str) -> list[Node]:
    doc = json.loads(repo.read_blob(tree_id))
    nodes: list[Node] = doc["nodes"]
    return nodes


def check_name(name: str, where: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\x00" in name or "\\" in name:
        raise UnsafeRestorePath(f"unsafe path component {display(name)!r} in {display(where)!r}")


def walk(repo: Repository, tree_id: str, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Yield ``(relative path, node)`` for every node, parents before children."""
    seen: set[str] = set()
    for node in load_tree(repo, tree_id):
        name = node_text(node, "name") if "name" in node else ""
        check_name(name, prefix + name)
        if name in seen:
            raise UnsafeRestorePath(f"duplicate name {display(prefix + name)!r} in the snapshot")
        seen.add(name)
        rel = prefix + name
        yield rel, node
        if node.get("type") == "dir":
            yield from walk(repo, node["subtree"], rel + "/")


def read_file(repo: Repository, snapshot: Snapshot | str, path: str) -> bytes:
    """Return one file of a snapshot (every blob verified)."""
    snap = snapshot if isinstance(snapshot, Snapshot) else repo.find_snapshot(snapshot)
    tree = snap.tree
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        node = next((n for n in load_tree(repo, tree) if node_text(n, "name") == part), None)
        if node is None:
            raise InputError(f"{path!r} is not in snapshot {snap.short_id}")
        if i == len(parts) - 1:
            if node["type"] != "file":
                raise InputError(f"{path!r} in snapshot {snap.short_id} is not a file")
            return b"".join(read_entry(repo, e) for e in node["content"])
        if node["type"] != "dir":
            raise InputError(f"{path!r} is not in snapshot {snap.short_id}")
        tree = node["subtree"]
    raise InputError("an empty path names no file")


def list_files(repo: Repository, snapshot: Snapshot | str) -> list[tuple[str, Node]]:
    snap = snapshot if isinstance(snapshot, Snapshot) else repo.find_snapshot(snapshot)
    return list(walk(repo, snap.tree))
