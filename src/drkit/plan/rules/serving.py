"""Model serving: critical routes fail over across providers and regions."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.plan.analysis import (
    critical_routes,
    route_operators,
    route_regions,
    worst_case_failover,
)
from drkit.plan.lint import Finding, LintContext, Severity, rule
from drkit.plan.models import Plan, Route
from drkit.types import format_duration


@rule(
    "DR101",
    "critical-route-providers",
    Severity.ERROR,
    "a critical serving route has targets from at least 2 providers",
    "Multi-provider for critical workloads. Don't rely on single provider for mission-critical AI.",
)
def critical_route_providers(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, route in critical_routes(plan):
        yield from _at_least_two(
            i,
            route,
            route_operators(route),
            "provider",
            "add a target from another provider (e.g. provider: openai next to "
            "anthropic), or set `vendor:` when one dialect is served by several vendors",
        )


@rule(
    "DR102",
    "critical-route-regions",
    Severity.ERROR,
    "a critical serving route has targets in at least 2 regions",
    "Multi-region deployment. Primary and secondary regions active. Traffic failover "
    "automated on primary outage.",
)
def critical_route_regions(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, route in critical_routes(plan):
        yield from _at_least_two(
            i,
            route,
            route_regions(route),
            "region",
            "add a target in another region so a region outage fails over",
            has="has targets in",
        )


def _at_least_two(
    i: int, route: Route, found: list[str], noun: str, hint: str, has: str = "has"
) -> Iterator[Finding]:
    """A finding when a critical route's targets span fewer than 2 providers/regions."""
    if len(found) < 2:
        yield Finding(
            ("serving", "routes", i, "targets"),
            f"critical route {route.name!r} {has} {len(found)} {noun} "
            f"({', '.join(found)}); needs at least 2",
            hint,
        )


@rule(
    "DR103",
    "critical-tier-multi-region",
    Severity.ERROR,
    "a critical tier is multi-region",
    "Tiered DR. Critical workloads multi-region; others single-region with backup.",
)
def critical_tier_multi_region(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for name, tier in plan.tiers.items():
        if plan.is_critical(name) and not tier.multi_region:
            yield Finding(
                ("tiers", name),
                f"tier {name!r} is critical but not multi_region",
                f"set `multi_region: true` on tier {name!r} (and replicate its data to "
                "another region)",
            )


@rule(
    "DR104",
    "route-failover-within-rto",
    Severity.WARNING,
    "the worst-case time to reach a route's last target is within the tier's RTO",
    "RTO target: minutes. User-facing serving must restore quickly. Automated failover essential.",
)
def route_failover_within_rto(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, route in enumerate(plan.serving.routes):
        tier = plan.tiers.get(route.tier)
        if tier is None:
            continue
        worst = worst_case_failover(route)
        if worst > tier.rto:
            yield Finding(
                ("serving", "routes", i, "deadlines"),
                f"route {route.name!r} may take {format_duration(worst)} to reach its last "
                f"target (connect + first_token per target), over the {format_duration(tier.rto)} "
                f"RTO of tier {route.tier!r}",
                "shorten the connect/first_token deadlines or order the targets so the "
                "likeliest to work come first",
            )


@rule(
    "DR105",
    "gateway-auth-off-on-network",
    Severity.ERROR,
    "a gateway with client auth disabled listens on loopback only, unless the plan says so",
    "Security breach scenario: an open gateway spends the provider keys for anyone who reaches it.",
)
def gateway_auth_off_on_network(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    serving = plan.serving
    if serving.unauthenticated_on_network():
        yield Finding(
            ("serving", "auth", "disabled"),
            f"client auth is disabled while the gateway listens on {serving.gateway.host}, "
            "a non-loopback address: anyone who reaches it can spend the provider keys",
            "set serving.auth.client_keys_env (and give clients a key), listen on "
            "127.0.0.1, or acknowledge it with serving.auth.allow_unauthenticated_network: true",
        )
