"""Where an upstream call goes and with which headers, per dialect (each official SDK's way).

The API key is revealed only into the headers built here: never into errors, logs or reprs.
"""

from __future__ import annotations

from collections.abc import Mapping

from drkit.connectors.llm.sse import Dialect
from drkit.types import Secret

#: The Anthropic API version sent when the caller does not set one.
ANTHROPIC_VERSION = "2023-06-01"


def endpoint_url(dialect: Dialect, base_url: str) -> str:
    """The chat endpoint for a base URL, following each official SDK's convention.

    OpenAI base URLs include the version (``https://api.openai.com/v1``); Anthropic's do
    not (``https://api.anthropic.com``).
    """
    base = base_url.rstrip("/")
    if dialect == "openai":
        return base + "/chat/completions"
    return base + "/v1/messages"


def request_headers(
    dialect: Dialect, api_key: Secret | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Auth and protocol headers for one request (the key revealed only here)."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    if dialect == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if api_key:
            # the classic header; Anthropic's SDK 2.x sends the same key as a bearer token
            headers["x-api-key"] = api_key.reveal()
    elif api_key:
        headers["authorization"] = "Bearer " + api_key.reveal()
    if extra:
        headers.update(extra)
    return headers


def stream_headers(
    dialect: Dialect, api_key: Secret | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """:func:`request_headers` for a streaming call (``accept: text/event-stream``)."""
    headers = request_headers(dialect, api_key, extra)
    headers["accept"] = "text/event-stream"
    return headers
