"""Each dialect's error ``type`` for an HTTP status: the one table per dialect.

Anthropic's table, and back, is used where the simulator writes error bodies, where the
gateway answers Anthropic clients and where the upstream client reads an in-stream
``event: error`` (which has a type but no status). From Anthropic's API reference
(errors), plus 503 (a gateway's "no target could answer", shown as the overload it is)
and 504 (``timeout_error``).

OpenAI's table gives a ``type`` and the ``code`` OpenAI sets next to it, as OpenAI's API
answers (a bad key is an ``invalid_request_error`` with code ``invalid_api_key``); the
simulator writes it and the gateway answers OpenAI clients with it (the official SDKs
classify errors by HTTP status).
"""

from __future__ import annotations

#: status -> the ``error.type`` of an Anthropic error body
ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

#: ``error.type`` -> status (overloaded_error is Anthropic's 529)
ANTHROPIC_STATUS: dict[str, int] = {
    etype: status for status, etype in sorted(ANTHROPIC_ERROR_TYPES.items()) if status != 503
}


def anthropic_error_type(status: int) -> str:
    """The type for ``status``: the table's, else ``invalid_request_error`` for other
    4xx and ``api_error`` for the rest."""
    known = ANTHROPIC_ERROR_TYPES.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


#: status -> (``error.type``, ``error.code``) of an OpenAI error body
OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_exceeded", None),
}


def openai_error(status: int) -> tuple[str, str | None]:
    """(type, code) for ``status``: the table's, else ``invalid_request_error`` for other
    4xx and ``server_error`` for the rest."""
    known = OPENAI_ERRORS.get(status)
    if known is not None:
        return known
    return ("invalid_request_error" if 400 <= status < 500 else "server_error", None)
