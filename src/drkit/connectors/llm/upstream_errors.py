"""How the upstream client classifies a failure: the reasons, statuses and error events.

No HTTP library is needed to import it (the Provider wrappers and the in-process
:class:`~drkit.connectors.llm.provider.MockProvider` classify with it too). Every
failure is an :class:`~drkit.errors.UpstreamError` whose ``reason`` is one of
:data:`REASONS`, whose ``retryable`` says whether failover may try another target, and
whose ``retry_after`` carries a 429's ``Retry-After`` in seconds.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from drkit.connectors.llm.error_types import ANTHROPIC_STATUS, OPENAI_ERRORS
from drkit.errors import UpstreamError

#: Every ``UpstreamError.reason`` this module produces.
REASONS = (
    "connect",
    "timeout_connect",
    "timeout_first_token",
    "timeout_idle",
    "timeout_total",
    "status_429",
    "status_5xx",
    "status_4xx",
    "upstream_auth",
    "model_not_found",
    "stream_cut",
    "malformed",
)

#: Upstream error bodies kept on the error (for 4xx returned to the client), at most.
MAX_ERROR_BODY = 64 * 1024


#: the message of each deadline's timeout, by reason
PHASE_TEXT = {
    "timeout_first_token": "no first token before the first-token deadline",
    "timeout_idle": "the stream stalled past the idle deadline",
    "timeout_total": "the attempt ran past the total deadline",
}


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date), or None."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def status_error(
    status: int, body: bytes, headers: Mapping[str, str], *, where: str
) -> UpstreamError:
    """Classify an error status: 429 and 5xx (incl. 529) are retryable, other 4xx not --
    except 401/403 (``upstream_auth``) and 404 (``model_not_found``): the caller built
    that request with its own key and its own model name, so those say the target is
    misconfigured (a revoked key, a retired model), not that the client's request is bad."""
    snippet = _error_message(body)
    message = f"{where} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    if status == 429:
        return UpstreamError(
            message,
            status=429,
            retryable=True,
            reason="status_429",
            retry_after=parse_retry_after(headers),
            body=body[:MAX_ERROR_BODY],
        )
    if status in (401, 403, 404):
        return UpstreamError(
            message,
            status=status,
            retryable=True,
            reason="model_not_found" if status == 404 else "upstream_auth",
            body=body[:MAX_ERROR_BODY],
        )
    if status >= 500:
        return UpstreamError(
            message, status=status, retryable=True, reason="status_5xx", body=body[:MAX_ERROR_BODY]
        )
    return UpstreamError(
        message, status=status, retryable=False, reason="status_4xx", body=body[:MAX_ERROR_BODY]
    )


def _error_message(body: bytes) -> str:
    """The provider's error message from a JSON error body (either dialect), shortened."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", errors="replace").strip()
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err.get("type") or "")[:200]
    return str(err or "")[:200]


#: in-stream error type (or OpenAI code) -> status: Anthropic's table plus OpenAI's names
#: that say one status (``invalid_request_error`` is any 4xx for OpenAI: Anthropic's 400)
_STREAM_ERROR_STATUS = {
    **ANTHROPIC_STATUS,
    **{
        name: status
        for status, names in OPENAI_ERRORS.items()
        for name in names
        if name and name != "invalid_request_error"
    },
}


def stream_error(err: Mapping[str, Any], where: str) -> UpstreamError:
    """An error event inside a 200 stream (Anthropic ``event: error``, OpenAI ``{"error"}``)."""
    code = err.get("code")
    # OpenAI's code is the precise one (type invalid_request_error, code invalid_api_key)
    kind = str(code if code in _STREAM_ERROR_STATUS else err.get("type") or code or "error")
    message = f"{where} sent an error event mid-stream: {kind}: {err.get('message', '')}"[:300]
    status = _STREAM_ERROR_STATUS.get(kind, 500)
    body = json.dumps({"type": "error", "error": dict(err)}).encode()
    return (
        status_error(status, body, {}, where=where)
        if status < 500
        else UpstreamError(message, status=status, retryable=True, reason="status_5xx", body=body)
    )
