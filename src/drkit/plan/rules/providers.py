"""Provider risk, communication and repositories."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.plan.analysis import critical_routes, route_operators
from drkit.plan.lint import Finding, LintContext, Severity, rule
from drkit.plan.models import Plan


@rule(
    "DR701",
    "sla-credits-not-dr",
    Severity.ERROR,
    "SLA credits are not counted as disaster recovery",
    "Contractual protections. SLA credits are compensation, not DR.",
)
def sla_credits_not_dr(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, provider in enumerate(plan.providers):
        if provider.credits_counted_as_dr:
            yield Finding(
                ("providers", i, "credits_counted_as_dr"),
                f"provider {provider.name!r}: SLA credits are counted as DR; they are "
                "compensation, not recovery",
                "set `credits_counted_as_dr: false` and cover the outage with a second "
                "provider on the route",
            )


@rule(
    "DR702",
    "critical-provider-sla-reviewed",
    Severity.WARNING,
    "every provider behind a critical route has its SLA recorded under providers",
    "Your DR plans depend on provider DR. Review provider SLAs and stated DR capabilities.",
)
def critical_provider_sla(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    known = {p.name: p for p in plan.providers}
    for i, route in critical_routes(plan):
        for operator in route_operators(route):
            entry = known.get(operator)
            if entry is None or entry.sla is None:
                yield Finding(
                    ("serving", "routes", i),
                    f"provider {operator!r} serves critical route {route.name!r} but its SLA "
                    "is not recorded",
                    f"add `- {{name: {operator}, sla: 99.9}}` under providers: after "
                    "reviewing its SLA and DR capabilities",
                )


@rule(
    "DR801",
    "status-page-covers-critical",
    Severity.WARNING,
    "every critical route is covered by a status-page component",
    "Status page. Real-time customer communication. Honest about impact and timeline.",
)
def status_page_covers_critical(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    covered = {name for c in plan.status_page.components for name in c.covers}
    for i, route in critical_routes(plan):
        if route.name not in covered:
            yield Finding(
                ("serving", "routes", i),
                f"critical route {route.name!r} is not on the status page",
                f"add a status_page component with `covers: [{route.name}]`",
            )


@rule(
    "DR901",
    "offsite-replica",
    Severity.WARNING,
    "the repository has a replica in another region than the primary",
    "Cross-region replication. Configure during initial setup, not during disaster.",
)
def offsite_replica(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    primary = plan.repositories.primary
    if not any(r.region != primary.region for r in plan.repositories.replicas):
        yield Finding(
            ("repositories",),
            f"no replica outside the primary's region {primary.region!r}: losing that "
            "region loses every backup",
            "add a replica in another region under repositories.replicas",
        )
