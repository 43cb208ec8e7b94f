"""What an operator chooses for a live drill (``drkit drill run ... --live URL``), checked
against the plan's ``testing.live_limits`` before anything reaches the gateway."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field

from drkit.errors import SecretMissing, UsageError
from drkit.plan.models import LiveLimits, Plan
from drkit.types import Secret, format_duration


@dataclass(frozen=True, slots=True)
class LiveOptions:
    url: str
    fraction: float
    duration_s: float
    #: the admin key of the gateway (from ``serving.auth.admin_keys_env``)
    admin_key: Secret = field(repr=False)
    #: the lease (default: the plan's ``testing.live_limits.lease``)
    lease_s: float | None = None
    owner: str = ""
    #: the targets to fault (default: the route's primary; region-outage: the region's)
    targets: tuple[str, ...] = ()


def default_owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def admin_key(plan: Plan) -> Secret:
    """The first admin key of the plan's ``serving.auth.admin_keys_env``."""
    env = plan.serving.auth.admin_keys_env
    raw = os.environ.get(env, "") if env else ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise SecretMissing(
            f"a live drill needs the gateway's admin key: {env or 'serving.auth.admin_keys_env'} "
            "is not set",
            hint=f"export {env or 'DRKIT_GATEWAY_ADMIN_KEYS'}=<the gateway's admin key>",
        )
    return Secret(keys[0])


def check_limits(options: LiveOptions, limits: LiveLimits) -> None:
    """UsageError (exit 2) for a fraction outside (0, 1] or over the plan's limits."""
    f = options.fraction
    if not 0 < f <= 1:
        raise UsageError(
            f"--fraction must be in (0, 1], not {f:g}", hint="e.g. --fraction 0.05 (5 %)"
        )
    if f > limits.max_fraction:
        raise UsageError(
            f"--fraction {f:g} is over the plan's testing.live_limits.max_fraction "
            f"{limits.max_fraction:g}",
            hint=f"--fraction {limits.max_fraction:g} or less, or raise the limit in the plan",
        )
    d = options.duration_s
    if d <= 0:
        raise UsageError(f"--duration must be longer than 0, not {d:g}s", hint="e.g. 10m")
    if d > limits.max_duration:
        raise UsageError(
            f"--duration {format_duration(d)} is over the plan's "
            f"testing.live_limits.max_duration {format_duration(limits.max_duration)}",
            hint=f"--duration {format_duration(limits.max_duration)} or less, or raise the "
            "limit in the plan",
        )
    if options.lease_s is not None and options.lease_s <= 0:
        raise UsageError(
            f"--lease must be longer than 0, not {options.lease_s:g}s", hint="e.g. 15s"
        )
    if not options.url.startswith(("http://", "https://")):
        raise UsageError(
            f"--live {options.url!r} is not a gateway URL",
            hint="--live http://GATEWAY:8787 (data-corruption takes --live alone)",
        )
