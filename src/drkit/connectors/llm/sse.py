"""Server-sent events: an incremental parser, an encoder, and what an event *means*.

The parser follows the WHATWG ``text/event-stream`` rules that providers rely on:
lines end with ``\\n``, ``\\r\\n`` or ``\\r``; a blank line dispatches an event; several
``data:`` lines join with ``\\n``; a line starting with ``:`` is a comment (keep-alive);
one space after the colon is stripped; an event with no ``data`` is not dispatched.

:func:`is_content` and :func:`is_terminal` encode what the gateway needs to know of
each dialect's stream: when the first *content* token arrives (the end of the
hold-back window) and which event says the answer is complete (anything else before
the connection ends is a cut stream).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Dialect = Literal["openai", "anthropic"]
DIALECTS: tuple[Dialect, ...] = ("openai", "anthropic")

#: OpenAI's end-of-stream sentinel (``data: [DONE]``), not JSON.
DONE = "[DONE]"

_UNSET: Any = object()
#: SSE line ends only (``str.splitlines`` would also split on form feeds and U+2028)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event: its ``event`` name (None when absent) and its ``data`` text."""

    data: str
    event: str | None = None
    id: str | None = None
    #: the data's bytes as received, when the event came as one ``data: `` line of valid
    #: UTF-8 with ``\n`` line ends (what providers send): a proxy can pass them on as
    #: they are; None otherwise
    raw: bytes | None = field(default=None, repr=False, compare=False)
    _json: Any = field(default=_UNSET, repr=False, compare=False)

    def json(self) -> Any:
        """The data parsed as JSON (cached); ``None`` for OpenAI's ``[DONE]``.

        Raises ``ValueError`` (``json.JSONDecodeError``) when the data is not JSON.
        """
        if self._json is _UNSET:
            self._json = None if self.data == DONE else json.loads(self.data)
        return self._json

    def encode(self) -> bytes:
        """The event as wire bytes, ending with the blank line that dispatches it."""
        return encode_sse(self.data, self.event)


def encode_sse(data: str | bytes, event: str | None = None) -> bytes:
    """Encode one event; multi-line data becomes several ``data:`` lines."""
    text = data.decode() if isinstance(data, bytes) else data
    head = f"event: {event}\n" if event else ""
    if "\n" in text or "\r" in text:
        body = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))
    else:
        body = f"data: {text}\n"
    return (head + body + "\n").encode()


def encode_json_sse(obj: Any, event: str | None = None) -> bytes:
    """Encode a JSON object as one event (compact JSON, UTF-8, one line)."""
    return encode_sse(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), event)


class SSEParser:
    """Incremental parser: :meth:`feed` it bytes as they arrive, get whole events back.

    Bytes may be split anywhere, including inside a UTF-8 sequence or between ``\\r``
    and ``\\n``. Not thread-safe; one parser per stream.
    """

    __slots__ = ("_buf", "_data", "_event", "_id", "_pending_cr", "_raw", "_seen_bom")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        # the bytes of the event's one data line (None once it has another, or an odd one)
        self._raw: bytes | None = None
        self._event: str | None = None
        self._id: str | None = None
        self._pending_cr = False
        self._seen_bom = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk``; return the events it completed (possibly none)."""
        if not chunk:
            return []
        if self._pending_cr:
            # a "\r" ended the previous chunk: a "\n" now belongs to the same line end
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if not self._seen_bom:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._buf = buf
                return []
            self._seen_bom = True
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
        events: list[SSEEvent] = []
        if b"\r" not in buf:
            # fast path, what providers send: "\n" line ends, "data: " and "event: " fields
            lines = buf.split(b"\n")
            self._buf = lines.pop()
            data = self._data
            for raw in lines:
                if raw.startswith(b"data: "):
                    line = raw[6:]
                    payload: bytes | None = line
                    try:
                        text = line.decode()
                    except UnicodeDecodeError:
                        text = line.decode("utf-8", errors="replace")
                        payload = None  # not passed on as received: it is not UTF-8
                    self._raw = None if data else payload
                    data.append(text)
                elif not raw:
                    if data:
                        events.append(SSEEvent("\n".join(data), self._event, self._id, self._raw))
                        data = self._data = []
                        self._raw = None
                    self._event = None
                elif raw.startswith(b"event: "):
                    self._event = raw[7:].decode("utf-8", errors="replace") or None
                else:
                    self._line(raw.decode("utf-8", errors="replace"), events)
                    data = self._data
            return events
        start = 0
        n = len(buf)
        while start < n:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl >= 0 else n)
            if cr >= 0:
                end, nxt = cr, cr + 1
                if nxt < n and buf[nxt : nxt + 1] == b"\n":
                    nxt += 1
                elif nxt == n:
                    self._pending_cr = True
            elif nl >= 0:
                end, nxt = nl, nl + 1
            else:
                break
            self._line(buf[start:end].decode("utf-8", errors="replace"), events)
            start = nxt
        self._buf = buf[start:]
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: an event without its blank line is discarded (per the spec)."""
        self._buf = b""
        self._data = []
        self._raw = None
        self._event = None
        return []

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished event are buffered (a cut mid-event)."""
        return bool(self._buf) or bool(self._data)

    def _line(self, line: str, out: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                out.append(SSEEvent("\n".join(self._data), self._event, self._id, self._raw))
            self._data = []
            self._raw = None
            self._event = None
            return
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._raw = None
        elif name == "event":
            self._event = value or None
        elif name == "id" and "\0" not in value:
            self._id = value
        # "retry" and unknown fields are ignored


def parse_sse(data: bytes) -> list[SSEEvent]:
    """Parse a whole byte string (tests, recorded streams)."""
    parser = SSEParser()
    return parser.feed(data) + parser.close()


def event_type(dialect: Dialect, ev: SSEEvent) -> str:
    """The kind of event: Anthropic's ``type``; OpenAI ``chunk``, ``done`` or ``error``."""
    if dialect == "anthropic":
        payload = ev.json()
        kind = payload.get("type") if isinstance(payload, dict) else None
        return str(kind or ev.event or "")
    if ev.data == DONE:
        return "done"
    payload = ev.json()
    if isinstance(payload, dict) and payload.get("error"):
        return "error"
    return "chunk"


def is_content(dialect: Dialect, ev: SSEEvent) -> bool:
    """True when the event carries answer content (see :func:`carries_content`)."""
    payload = ev.json()
    if not isinstance(payload, dict):
        return False
    return carries_content(
        dialect, payload.get("type") if dialect == "anthropic" else None, payload
    )


#: Anthropic delta types whose content is their text; any other delta type counts as
#: content as soon as it arrives (what is unknown cannot be replayed invisibly)
_TEXT_DELTAS = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
}


def carries_content(dialect: Dialect, kind: str | None, payload: dict[str, Any]) -> bool:
    """The one rule for "the first content token": does this event carry answer content?

    Text, a tool call, a refusal, thinking text: yes. Role-only chunks, ``message_start``,
    pings, usage-only chunks and *empty* block starts (text or thinking) are not content:
    a failover before the first content event is invisible to the client. ``kind`` is the
    Anthropic event type (``None`` for an OpenAI chunk). Used on upstream events (the end
    of the hold-back window) and on the client-dialect events the gateway sends.
    """
    if dialect == "anthropic":
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            key = _TEXT_DELTAS.get(delta.get("type"))  # type: ignore[arg-type]
            return key is None or bool(delta.get(key))
        if kind == "content_block_start":
            block = payload.get("content_block") or {}
            return block.get("type") not in ("text", "thinking") or bool(block.get("text"))
        return False
    if kind is not None:
        return False
    for choice in payload.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
            return True
    return False


def is_terminal(dialect: Dialect, ev: SSEEvent) -> bool:
    """True for the event that ends a complete answer (``message_stop`` / ``[DONE]``)."""
    if dialect == "openai":
        return ev.data == DONE
    if ev.event == "message_stop":
        return True
    payload = ev.json()
    return isinstance(payload, dict) and payload.get("type") == "message_stop"


def error_payload(dialect: Dialect, ev: SSEEvent) -> dict[str, Any] | None:
    """The error object of an in-stream error event, or None for any other event."""
    if ev.data == DONE:
        return None
    payload = ev.json()
    if not isinstance(payload, dict):
        return None
    if dialect == "anthropic":
        if ev.event == "error" or payload.get("type") == "error":
            err = payload.get("error")
            return err if isinstance(err, dict) else {"type": "error", "message": str(err)}
        return None
    err = payload.get("error")
    if err:
        return err if isinstance(err, dict) else {"message": str(err)}
    return None
