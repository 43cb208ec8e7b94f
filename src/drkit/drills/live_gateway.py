"""The admin API of a running gateway, as a live drill's client sees it
(:mod:`drkit.gateway.live_api` is the other side). Only httpx: the drill is a client of the
gateway, never a part of it."""

from __future__ import annotations

import re
from typing import Any

import httpx

from drkit.errors import DrillError, InputError, LiveFaultRefused, UsageError
from drkit.types import Secret

#: one sample of the gateway's attempts counter in the Prometheus text format
_ATTEMPTS = re.compile(r"^drkit_gateway_attempts_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


class LiveGateway:
    """The admin API of one running gateway."""

    def __init__(self, url: str, admin_key: Secret, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._key = admin_key
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            r = httpx.request(
                method,
                self.url + path,
                json=body,
                headers={"authorization": f"Bearer {self._key.reveal()}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise DrillError(
                f"cannot reach the gateway at {self.url}: {type(exc).__name__}",
                hint="check --live URL and that `drkit gateway serve` runs there",
            ) from exc
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            message = err.get("message") if isinstance(err, dict) else None
            if not isinstance(message, str):
                message = f"HTTP {r.status_code} from {self.url}{path}"
            hint = err.get("hint") if isinstance(err, dict) else None
            raise LiveFaultRefused(message, status=r.status_code, hint=hint)
        return data

    def targets(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/admin/targets")
        return out

    def faults(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/admin/live-faults")["live_faults"]
        return out

    def install(self, spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", "/admin/live-faults", spec)
        return out

    def renew(self, drill: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", f"/admin/live-faults/{drill}/renew", {})
        return out

    def get(self, drill: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/admin/live-faults/{drill}")
        return out

    def lift(self, drill: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("DELETE", f"/admin/live-faults/{drill}")
        return out

    def ok_attempts(self, route: str, targets: tuple[str, ...]) -> float:
        """Upstream attempts of ``route`` that ``targets`` answered, from ``GET /metrics``."""
        try:
            text = httpx.get(self.url + "/metrics", timeout=self.timeout).text
        except httpx.HTTPError as exc:
            raise DrillError(f"cannot read {self.url}/metrics: {type(exc).__name__}") from exc
        total = 0.0
        for line in text.splitlines():
            m = _ATTEMPTS.match(line)
            if m is None:
                continue
            labels = dict(_LABEL.findall(m["labels"]))
            if (
                labels.get("route") == route
                and labels.get("target") in targets
                and labels.get("result") == "ok"
            ):
                total += float(m["value"])
        return total


def as_input_error(exc: LiveFaultRefused, url: str) -> InputError:
    """A refusal before the drill starts: bad input or a rail, exit 2 with a hint."""
    if exc.status == 401:
        return UsageError(
            f"the gateway at {url} refused the admin key: {exc}",
            hint="export the gateway's admin key in serving.auth.admin_keys_env",
        )
    return UsageError(f"the gateway at {url} refuses the live drill: {exc}", hint=exc.hint)


def abort(url: str, admin_key: Secret, drill: str) -> dict[str, Any]:
    """Lift the fault of ``drill`` at ``url`` now; UsageError when it has none."""
    gateway = LiveGateway(url, admin_key)
    try:
        return gateway.lift(drill)
    except LiveFaultRefused as exc:
        raise as_input_error(exc, url) from None
