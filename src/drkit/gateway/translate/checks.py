"""What both directions of request translation share: refusing a field, and its checks.

Nothing is dropped silently: a field that cannot be carried faithfully is refused with a
:class:`~drkit.errors.TranslationError` naming the field and why.
"""

from __future__ import annotations

from typing import Any

from drkit.errors import TranslationError

_HINT = "remove the field, or route this model to a target of the same dialect"


def refuse(field: str, why: str, hint: str = _HINT) -> TranslationError:
    """The error for ``field`` that has no faithful twin in the target dialect.

    The error carries ``field`` and ``why`` as attributes too (the gateway's translation
    probe records them, :mod:`drkit.gateway.translation_probe`)."""
    exc = TranslationError(f"cannot translate {field}: {why}", hint=hint)
    exc.field = field
    exc.reason = why
    return exc


def check_keys(obj: Any, allowed: set[str] | None, field: str, why: str) -> None:
    """Refuse an object that is not a dict or that carries a field outside ``allowed``."""
    if not isinstance(obj, dict):
        raise refuse(field, "expected an object")
    if allowed is None:
        return
    extra = set(obj) - allowed
    if extra:
        raise refuse(f"{field}.{sorted(extra)[0]}", why)


def text_of_blocks(blocks: Any, field: str) -> str:
    """Join text blocks/parts into one string; refuse anything that is not text."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise refuse(field, "expected a string or a list of text blocks")
    parts: list[str] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise refuse(f"{field}[{i}]", f"content of type {kind!r} is only supported as text")
        check_keys(block, {"type", "text", "cache_control"}, f"{field}[{i}]", "not a text field")
        parts.append(str(block.get("text", "")))
    return "".join(parts) if len(parts) == 1 else "\n\n".join(parts)
