"""Faults the provider simulator can inject, and how they are written.

A fault is data (:class:`Fault`), set when the simulator starts (``--fault`` on the
command line) and changed while it runs (``PUT /_sim/faults``). Each one may fire on a
fraction of requests (``rate``, drawn from the simulator's seeded generator, so a run
repeats) and only during the first N requests after it was set (``first``).

Kinds::

    error         answer `status` (default 503) with a provider-shaped error body
    rate_limit    answer 429 with Retry-After: `retry_after` seconds
    latency       wait `delay` seconds before answering (combines with the others)
    black_hole    accept the request and never answer
    refuse        stop listening on the API port: connections are refused (all requests;
                  `rate`/`first` do not apply); the admin port keeps answering
    stream_cut    send `after` tokens, then drop the connection (mode=clean: end the
                  body normally but without the final events)
    stream_stall  send `after` tokens, then stop sending (for `delay` seconds, or forever)
    malformed     invalid JSON (non-streaming) or an invalid SSE event after `after` tokens
    stream_error  after `after` tokens, an in-stream error event (Anthropic `event: error`
                  overloaded_error for status 529; OpenAI `{"error": ...}`), then the end;
                  a non-streaming request gets `status` instead
    wrong_answer  answer HTTP 200 with a plausible but wrong text (a "silent model swap");
                  with `topic=WORD`, only requests whose messages contain WORD; with
                  `model=NAME`, only requests for that model (one bad model version)

The command-line form is ``KIND[:VALUE][,key=value...]``, e.g. ``error:529``,
``rate_limit:retry_after=2``, ``latency:delay=0.5``, ``stream_cut:after=5``,
``error:status=503,rate=0.5,first=10``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from drkit.errors import UsageError

FaultKind = Literal[
    "error",
    "rate_limit",
    "latency",
    "black_hole",
    "refuse",
    "stream_cut",
    "stream_stall",
    "malformed",
    "stream_error",
    "wrong_answer",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
#: The key a bare ``KIND:VALUE`` sets, per kind.
_SHORT_KEY = {
    "error": "status",
    "rate_limit": "retry_after",
    "latency": "delay",
    "stream_cut": "after",
    "stream_stall": "after",
    "malformed": "after",
    "stream_error": "after",
    "wrong_answer": "rate",
}


@dataclass(slots=True)
class Fault:
    """One fault rule; see the module docstring for what each kind does."""

    kind: str
    status: int = 503
    message: str | None = None
    body: Any = None
    retry_after: float = 1.0
    delay: float | None = None
    after: int = 3
    mode: str = "drop"
    rate: float = 1.0
    first: int | None = None
    #: wrong_answer: only requests whose message text contains this (case-insensitive)
    topic: str | None = None
    #: wrong_answer: only requests for this model name (a regressed model version)
    model: str | None = None
    #: requests this rule has considered / fired on since it was set (reported, not set)
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not 100 <= int(self.status) <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if self.kind == "latency" and self.delay is None:
            raise ValueError("latency needs delay=SECONDS")
        if self.mode not in ("drop", "clean"):
            raise ValueError("mode must be drop or clean")
        if self.after < 0 or (self.first is not None and self.first < 0):
            raise ValueError("after and first cannot be negative")
        self.status = int(self.status)
        self.rate = float(self.rate)
        self.retry_after = float(self.retry_after)

    @classmethod
    def from_dict(cls, data: Any) -> Fault:
        """Build from JSON (the admin API); raises ``ValueError`` naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object with a 'kind'")
        if "fail_rate" in data:  # the name drkit's object-store Faulty wrapper uses
            data = {**data, "rate": data["fail_rate"]}
            del data["fail_rate"]
        known = {f.name for f in fields(cls)} - {"seen", "fired"}
        unknown = set(data) - known - {"seen", "fired"}
        if unknown:
            raise ValueError(f"unknown fault field {sorted(unknown)[0]!r}")
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_fault(text: str) -> Fault:
    """Parse the command-line form ``KIND[:VALUE][,key=value...]``; UsageError if bad."""
    head, _, rest = text.strip().partition(",")
    kind, _, short = head.partition(":")
    kind = kind.strip().replace("-", "_")
    data: dict[str, Any] = {"kind": kind}
    items = [p for p in rest.split(",") if p.strip()]
    if short:
        if "=" in short:
            items.insert(0, short)
        elif kind in _SHORT_KEY:
            data[_SHORT_KEY[kind]] = _value(short)
        else:
            raise UsageError(f"--fault {text!r}: {kind} takes no value", hint=_FAULT_HINT)
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(
                f"--fault {text!r}: expected key=value, got {item!r}", hint=_FAULT_HINT
            )
        data[key.strip()] = _value(value.strip())
    try:
        return Fault.from_dict(data)
    except ValueError as exc:
        raise UsageError(f"--fault {text!r}: {exc}", hint=_FAULT_HINT) from None


_FAULT_HINT = "e.g. --fault error:503, --fault rate_limit:retry_after=2, --fault stream_cut:after=5"


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
