"""pgvector: sparse vectors (Qdrant's, Milvus's) as ``sparsevec`` columns.

A sparse vector ``NAME`` of a collection (``options["sparse_vectors"]``; in the canonical
payload ``__drkit_sparse.NAME`` = ``{"indices": [...], "values": [...]}``, 0-based) is
the column ``NAME`` of type ``sparsevec(DIM)``; a record without one has ``NULL`` there.
pgvector's positions are 1-based: canonical index ``i`` is position ``i + 1``
(``{1:0.5,4:2}/DIM`` holds indices 0 and 3).

``DIM`` is the dimension the collection records (``options["sparse_vectors"][NAME]
["dimension"]``: a pgvector source's own column type), else pgvector's maximum,
1,000,000,000. Qdrant and Milvus sparse vectors have no dimension, and one fixed before
the first record is read keeps the column type, and so the application's queries
(``ORDER BY NAME <#> '{...}/1000000000'::sparsevec``), the same on every restore. An
untyped ``sparsevec`` column (each row its own dimension) carries the row's dimension as
``"dimension"`` in the canonical payload.

What ``sparsevec`` cannot hold is refused per record, before its batch is written
(:func:`to_text`; a restore then drops its temporary table, so nothing is left): an
index beyond ``DIM - 1`` (Qdrant's go up to 2^32 - 1), more than 16,000 non-zero
values, an explicit zero (``sparsevec`` keeps only non-zeros), NaN or infinity.
Values are float32 in pgvector, as in a Qdrant server and in Milvus.
"""

from __future__ import annotations

import math
import re
from typing import Any

from drkit.errors import IncompatibleTarget

#: pgvector's largest sparsevec dimension (``SPARSEVEC_MAX_DIM``)
MAX_DIM = 1_000_000_000
#: pgvector's most non-zero values in one sparsevec (``SPARSEVEC_MAX_NNZ``)
MAX_NNZ = 16_000
_TYPE = re.compile(r"sparsevec(?:\((\d+)\))?")
_HINT = "restore into Qdrant or Milvus, or into another engine, where it stays in the payload"


def column_dimension(typ: str) -> tuple[bool, int | None]:
    """For a column type: (is a sparsevec, its dimension or ``None`` when untyped)."""
    m = _TYPE.fullmatch(typ)
    if m is None:
        return False, None
    return True, int(m.group(1)) if m.group(1) else None


def dimension_for(spec: Any) -> int:
    """The column dimension for a sparse vector's recorded options (see the docstring)."""
    dim = spec.get("dimension") if isinstance(spec, dict) else None
    return dim if isinstance(dim, int) and 0 < dim <= MAX_DIM else MAX_DIM


def to_text(sv: Any, dim: int | None, rid: str, sname: str) -> str:
    """The canonical sparse vector ``sv`` as sparsevec text of dimension ``dim`` (``None``:
    an untyped column, the record's own ``"dimension"`` or :data:`MAX_DIM`).
    Raises :class:`IncompatibleTarget` for what sparsevec cannot hold."""

    def refuse(why: str) -> IncompatibleTarget:
        return IncompatibleTarget(f"record {rid!r}: sparse vector {sname!r} {why}", hint=_HINT)

    if not isinstance(sv, dict):
        raise refuse(f"is not {{indices, values}} but {type(sv).__name__}")
    indices, values = sv.get("indices"), sv.get("values")
    if not isinstance(indices, list) or not isinstance(values, list):
        raise refuse("needs lists 'indices' and 'values'")
    if len(indices) != len(values):
        raise refuse(f"has {len(indices)} indices but {len(values)} values")
    if len(indices) > MAX_NNZ:
        raise refuse(f"has {len(indices)} non-zero values; pgvector's sparsevec holds {MAX_NNZ}")
    if dim is None:
        dim = dimension_for(sv)
    pairs = []
    for i, v in zip(indices, values, strict=True):
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise refuse(f"has index {i!r}; indices are integers from 0")
        if i >= dim:
            raise refuse(
                f"has index {i}, beyond pgvector's sparsevec({dim}) (indices 0 to {dim - 1})"
            )
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise refuse(f"has value {v!r} at index {i}; sparsevec holds finite numbers")
        if v == 0:
            raise refuse(f"has an explicit zero at index {i}; sparsevec keeps only non-zeros")
        pairs.append((i, float(v)))
    if len({i for i, _ in pairs}) != len(pairs):
        raise refuse("has the same index twice")
    return "{" + ",".join(f"{i + 1}:{v!r}" for i, v in pairs) + f"}}/{dim}"


def from_text(text: str, *, with_dimension: bool) -> dict[str, Any]:
    """sparsevec text as the canonical ``{"indices", "values"}`` (ascending, 0-based);
    ``with_dimension`` adds the vector's ``"dimension"`` (an untyped column)."""
    body, _, dim = text.rpartition("/")
    entries = body.strip()[1:-1]
    indices: list[int] = []
    values: list[float] = []
    for entry in entries.split(",") if entries else ():
        pos, _, value = entry.partition(":")
        indices.append(int(pos) - 1)
        # pgvector prints a float32 in its shortest form: Python reads back that value
        values.append(float(value))
    out: dict[str, Any] = {"indices": indices, "values": values}
    if with_dimension:
        out["dimension"] = int(dim)
    return out
