"""Client API keys: kept only as sha256 digests, compared in constant time.

Clients send their key the way their SDK does: ``Authorization: Bearer KEY`` (OpenAI)
or ``x-api-key: KEY`` (Anthropic). Both are accepted on every endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping


class KeyCheck:
    def __init__(self, digests: Iterable[bytes], *, disabled: bool = False) -> None:
        self._digests = tuple(digests)
        self.disabled = disabled

    @staticmethod
    def presented(headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        key = headers.get("x-api-key")
        return key.strip() if key else None

    def allows(self, headers: Mapping[str, str]) -> bool:
        if self.disabled:
            return True
        key = self.presented(headers)
        if not key:
            return False
        digest = hashlib.sha256(key.encode()).digest()
        ok = False
        for stored in self._digests:  # no early exit: time does not depend on which matched
            ok |= hmac.compare_digest(digest, stored)
        return ok
