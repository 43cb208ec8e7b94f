"""Export streams and their consistency report (:class:`CutInfo`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from drkit.connectors.vectorstore.collection import ConsistentCut
from drkit.connectors.vectorstore.records import ID

log = logging.getLogger("drkit.vectorstore")


@dataclass(slots=True)
class CutInfo:
    """How consistent an export was; filled in while the stream is consumed."""

    method: ConsistentCut
    #: The pinned version (LanceDB) or transaction snapshot id (pgvector), if any.
    version: str | None = None
    count_before: int | None = None
    count_after: int | None = None
    rows: int = 0
    complete: bool = False
    #: None when the cut is known consistent; else a sentence for the user.
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "version": self.version,
            "count_before": self.count_before,
            "count_after": self.count_after,
            "rows": self.rows,
            "warning": self.warning,
        }


class ExportStream(Iterator[pa.RecordBatch]):
    """An iterator of canonical record batches plus, once exhausted, its :class:`CutInfo`.

    Connectors build it from a generator. For ``count-check`` engines the count is taken
    before and after; if the counts differ, the rows exported differ from them, or an id
    appears twice, ``cut.warning`` says so (and it is logged): the export is not a
    consistent cut, because something wrote to the collection meanwhile.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], cut: CutInfo) -> None:
        self._batches = batches
        self.cut = cut

    def __iter__(self) -> ExportStream:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)


def count_checked(
    cut: CutInfo,
    batches: Iterator[pa.RecordBatch],
    recount: Callable[[], Any],
    engine: str,
    name: str,
) -> Iterator[pa.RecordBatch]:
    """Wrap a batch generator with the count-check consistency test (see ExportStream)."""
    seen: set[str] = set()
    dupes = 0
    for batch in batches:
        for i in batch.column(ID).to_pylist():
            if i in seen:
                dupes += 1
            seen.add(i)
        cut.rows += len(batch)
        yield batch
    cut.count_after = int(recount())
    cut.complete = True
    problems = []
    if cut.count_before != cut.count_after:
        problems.append(f"count changed from {cut.count_before} to {cut.count_after}")
    if cut.rows != cut.count_after:
        problems.append(f"{cut.rows} rows exported but the collection counts {cut.count_after}")
    if dupes:
        problems.append(f"{dupes} ids were exported twice")
    if problems:
        cut.warning = (
            f"{engine} collection {name!r} changed during the export ({'; '.join(problems)}): "
            "the snapshot is not a consistent cut; pause writers or snapshot again"
        )
        log.warning(cut.warning)
