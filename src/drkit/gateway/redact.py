"""Masking secrets out of anything the gateway sends or logs.

Provider error messages sometimes echo request headers or keys; every text that leaves
the gateway (error bodies, in-stream errors, event messages) passes through
:meth:`Redactor.text` first.
"""

from __future__ import annotations

from collections.abc import Iterable

from drkit.types import Secret

MASK = Secret.MASK


class Redactor:
    def __init__(self, secrets: Iterable[Secret | str | None]) -> None:
        values = {s.reveal() if isinstance(s, Secret) else s for s in secrets if s}
        # longest first, so a key that contains another is masked whole
        self._values = sorted((v for v in values if v and len(v) >= 4), key=len, reverse=True)
        self._bytes = [v.encode() for v in self._values]

    def text(self, value: str) -> str:
        for v in self._values:
            if v in value:
                value = value.replace(v, MASK)
        return value

    def bytes(self, value: bytes) -> bytes:
        for v in self._bytes:
            if v in value:
                value = value.replace(v, MASK.encode())
        return value
