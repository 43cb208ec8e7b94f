"""Qdrant local mode (``qdrant+local://PATH``) on disk: moving a collection by hand.

Local mode keeps a collection in ``PATH/collection/NAME`` and names it in
``PATH/meta.json`` (with its aliases and text indexes). Split from :mod:`.qdrant`, whose
``rename`` calls :func:`move_collection` with the client closed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def move_collection(path: Path, name: str, new_name: str) -> None:
    """Rename collection ``name`` to ``new_name`` under local-mode ``path``: the directory
    first, then ``meta.json`` (replaced in one step). A crash in between leaves the
    temporary collection of a restore (empty, a leftover) and a directory no collection
    names, which ``create`` clears before reusing the name."""
    base = path / "collection"
    dst = base / new_name
    if dst.is_dir():  # not a collection (the caller checked): a leftover directory
        shutil.rmtree(dst)
    os.rename(base / name, dst)
    meta_path = path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["collections"][new_name] = meta["collections"].pop(name)
    indexes = meta.get("text_indexes") or {}
    if name in indexes:
        indexes[new_name] = indexes.pop(name)
    meta["aliases"] = {
        a: (new_name if c == name else c) for a, c in meta.get("aliases", {}).items()
    }
    tmp = meta_path.with_name("meta.json.drkit-tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, meta_path)
