"""Where drkit's OpenLineage events go (the plan's ``lineage.openlineage``), and how a
failure to send them is told without leaking the destination's secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from drkit.plan.models import Plan


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the events go: ``file`` (appended) or ``url`` + ``endpoint``."""

    namespace: str
    file: Path | None = None
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key_env: str | None = None
    timeout: float = 5.0

    def describe(self) -> str:
        """The destination for messages: the file, or the URL without userinfo or query."""
        if self.file is not None:
            return str(self.file)
        parts = urlsplit(self.url or "")
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}/{self.endpoint.lstrip('/')}"


def destination(plan: Plan | None) -> Destination | None:
    """The plan's ``lineage.openlineage`` destination; None (emit nothing) without one."""
    out = plan.lineage.openlineage if plan is not None else None
    if plan is None or out is None:
        return None
    return Destination(
        namespace=out.namespace or f"drkit://{plan.name}",
        file=plan.resolve_path(out.file) if out.file is not None else None,
        url=out.url,
        endpoint=out.endpoint,
        api_key_env=out.api_key_env,
        timeout=float(out.timeout),
    )


def reason(exc: BaseException) -> str:
    """Why an emission failed, without URLs or hosts (a query may carry a token)."""
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None) is not None:
        return f"HTTP {response.status_code}"
    text = str(exc)
    retried = re.search(r"too many (\d{3}) error responses", text)
    if retried:  # urllib3 retried a 5xx answer until it gave up
        return f"HTTP {retried.group(1)} (after retries)"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, RuntimeError) and isinstance(cause, OSError):
        return f"{type(cause).__name__}: {cause.strerror or cause}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:  # requests' ConnectionError wraps the socket's error in its message
        return f"{type(exc).__name__}: {errno.group(1).strip()}"
    name = type(exc).__name__
    return name if "://" in text or "host=" in text else f"{name}: {text}"
