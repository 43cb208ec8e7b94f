"""Every lint rule, passing (the starter plan) and failing (one mutation each)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drkit.plan.lint import (
    Finding,
    LintContext,
    Rule,
    Severity,
    lint,
    register,
    rules,
    unregister,
)
from drkit.plan.models import Plan
from drkit.plan.source import field_name

Data = dict[str, Any]
FromData = Callable[..., Plan]


def test_starter_plan_has_no_findings(starter_data: Data, from_data: FromData) -> None:
    assert lint(from_data(starter_data)) == []


def _route(data: Data) -> Data:
    route: Data = data["serving"]["routes"][0]
    return route


def _tier(data: Data, name: str) -> Data:
    tier: Data = data["tiers"][name]
    return tier


def one_provider(d: Data) -> None:
    _route(d)["targets"][1]["provider"] = "anthropic"


def one_vendor_two_dialects(d: Data) -> None:
    for target in _route(d)["targets"]:
        target["vendor"] = "azure"


def one_region(d: Data) -> None:
    _route(d)["targets"][1]["region"] = "eu-west"


def critical_single_region(d: Data) -> None:
    _tier(d, "critical")["multi_region"] = False


def slow_failover(d: Data) -> None:
    _route(d)["deadlines"] = {"connect": "200s", "first_token": "200s", "total": "1h"}


def open_gateway_on_network(d: Data) -> None:
    d["serving"]["auth"] = {"disabled": True}
    d["serving"].setdefault("gateway", {})["host"] = "0.0.0.0"


def no_vector_schedule(d: Data) -> None:
    del d["vector_stores"][0]["schedule"]


def weekly_vector_schedule(d: Data) -> None:
    d["vector_stores"][0]["schedule"] = "0 0 * * 0"


def no_vector_retention(d: Data) -> None:
    del d["vector_stores"][0]["retention"]


def short_vector_retention(d: Data) -> None:
    d["vector_stores"][0]["retention"] = {"keep_last": 48, "keep_daily": 7}


def long_vector_retention(d: Data) -> None:
    d["vector_stores"][0]["retention"] = {"keep_daily": 30, "keep_yearly": 2}


def vector_not_replicated(d: Data) -> None:
    d["vector_stores"][0]["replicate_to"] = []


def _add_same_region_replica(d: Data) -> None:
    d["repositories"]["replicas"].append(
        {"name": "eu-replica", "url": "file:///srv/eu2", "region": "eu-west"}
    )


def vector_replicated_in_same_region(d: Data) -> None:
    _add_same_region_replica(d)
    d["vector_stores"][0]["replicate_to"] = ["eu-replica"]


def standby_in_the_same_region(d: Data) -> None:
    d["vector_stores"][0]["standby"] = {"engine": "qdrant+memory://sb", "region": "eu-west"}


def critical_eval_set_same_region(d: Data) -> None:
    _add_same_region_replica(d)
    d["eval_sets"][0]["tier"] = "critical"
    d["eval_sets"][0]["schedule"] = "15m"
    d["eval_sets"][0]["replicate_to"] = ["eu-replica"]
    d["repositories"]["replicas"][-1]["copy_every"] = "15m"


def dataset_unversioned(d: Data) -> None:
    d["datasets"][0]["versioned"] = False


def dataset_unscheduled(d: Data) -> None:
    del d["datasets"][0]["schedule"]


def dataset_unreplicated(d: Data) -> None:
    d["datasets"][0]["replicate_to"] = []


def model_without_lineage(d: Data) -> None:
    d["models"][0]["trained_on"] = []


def eval_set_unscheduled(d: Data) -> None:
    del d["eval_sets"][0]["schedule"]


def eval_set_unreplicated(d: Data) -> None:
    del d["eval_sets"][0]["replicate_to"]


def eval_results_unscheduled(d: Data) -> None:
    del d["eval_results"][0]["schedule"]


def eval_results_unreplicated(d: Data) -> None:
    d["eval_results"][0]["replicate_to"] = []


def no_restore_tests(d: Data) -> None:
    del d["testing"]["restore_test_every"]


def rare_restore_tests(d: Data) -> None:
    d["testing"]["restore_test_every"] = "180d"


def no_failover_drills(d: Data) -> None:
    del d["testing"]["failover_drill_every"]


def yearly_failover_drills(d: Data) -> None:
    d["testing"]["failover_drill_every"] = "1y"


def no_regional_failover(d: Data) -> None:
    del d["testing"]["regional_failover_every"]


def rare_regional_failover(d: Data) -> None:
    d["testing"]["regional_failover_every"] = "2y"


def no_gamedays(d: Data) -> None:
    del d["testing"]["gameday_every"]


def hourly_vector_vs_1h_rpo(d: Data) -> None:
    d["vector_stores"][0]["schedule"] = "1h"  # + 15m copy > 1h target


def credits_as_dr(d: Data) -> None:
    d["providers"][0]["credits_counted_as_dr"] = True


def sla_not_recorded(d: Data) -> None:
    d["providers"] = [d["providers"][0]]


def status_page_missing_route(d: Data) -> None:
    d["status_page"]["components"] = [d["status_page"]["components"][1]]


def no_offsite_replica(d: Data) -> None:
    d["repositories"]["replicas"][0]["region"] = "eu-west"


def critical_route_without_floor(d: Data) -> None:
    del _route(d)["quality"]


def floor_without_canary_or_schedule(d: Data) -> None:
    d["testing"]["scheduled_evals"] = []


def schedule_of_another_route(d: Data) -> None:
    d["testing"]["scheduled_evals"][0]["route"] = "other"
    other = copy.deepcopy(_route(d))
    other.update(name="other", tier="standard")
    d["serving"]["routes"].append(other)


def scheduled_set_undeclared(d: Data) -> None:
    d["testing"]["scheduled_evals"][0]["eval_set"] = "elsewhere/golden.jsonl"


def gate_set_too_small(d: Data) -> None:
    small = Path(__file__).resolve().parents[1] / "evals" / "data" / "small.jsonl"
    d["eval_sets"][0]["path"] = str(small)  # 10 examples
    d["eval_sets"][0]["quality"] = {"max_drop": 0.05}


def canary_set_undeclared(d: Data) -> None:
    d["serving"]["routes"][0]["canary"] = {"eval_set": "elsewhere/canary.jsonl"}


# (mutation, the rule that must fire, its severity, the field it points at, words)
FAILING: list[tuple[Callable[[Data], None], str, Severity, str, str]] = [
    (one_provider, "DR101", Severity.ERROR, "serving.routes[0].targets", "1 provider"),
    (one_vendor_two_dialects, "DR101", Severity.ERROR, "serving.routes[0].targets", "(azure)"),
    (one_region, "DR102", Severity.ERROR, "serving.routes[0].targets", "1 region"),
    (critical_single_region, "DR103", Severity.ERROR, "tiers.critical", "not multi_region"),
    (slow_failover, "DR104", Severity.WARNING, "serving.routes[0].deadlines", "6m40s"),
    (open_gateway_on_network, "DR105", Severity.ERROR, "serving.auth.disabled", "0.0.0.0"),
    (no_vector_schedule, "DR201", Severity.ERROR, "vector_stores[0]", "no snapshot schedule"),
    (weekly_vector_schedule, "DR201", Severity.ERROR, "vector_stores[0].schedule", "7d"),
    (no_vector_retention, "DR202", Severity.ERROR, "vector_stores[0]", "no retention"),
    (short_vector_retention, "DR202", Severity.ERROR, "vector_stores[0].retention", "7d"),
    (long_vector_retention, "DR202", Severity.WARNING, "vector_stores[0].retention", "730d"),
    (vector_not_replicated, "DR203", Severity.ERROR, "vector_stores[0]", "'eu-west'"),
    (vector_replicated_in_same_region, "DR203", Severity.ERROR, "vector_stores[0]", "outside"),
    (critical_eval_set_same_region, "DR204", Severity.ERROR, "eval_sets[0]", "multi-region"),
    (
        standby_in_the_same_region,
        "DR205",
        Severity.ERROR,
        "vector_stores[0].standby.region",
        "own region 'eu-west'",
    ),
    (dataset_unversioned, "DR301", Severity.ERROR, "datasets[0]", "not versioned"),
    (dataset_unscheduled, "DR302", Severity.ERROR, "datasets[0]", "no backup schedule"),
    (dataset_unreplicated, "DR302", Severity.ERROR, "datasets[0]", "not replicated"),
    (model_without_lineage, "DR303", Severity.ERROR, "models[0]", "dataset versions"),
    (dataset_unversioned, "DR303", Severity.ERROR, "models[0].trained_on[0]", "train@v1"),
    (eval_set_unscheduled, "DR401", Severity.ERROR, "eval_sets[0]", "not backed up"),
    (eval_set_unreplicated, "DR401", Severity.ERROR, "eval_sets[0]", "not replicated"),
    (eval_results_unscheduled, "DR402", Severity.ERROR, "eval_results[0]", "not backed up"),
    (eval_results_unreplicated, "DR402", Severity.ERROR, "eval_results[0]", "not replicated"),
    (
        critical_route_without_floor,
        "DR403",
        Severity.WARNING,
        "serving.routes[0]",
        "no quality floor",
    ),
    (
        floor_without_canary_or_schedule,
        "DR403",
        Severity.WARNING,
        "serving.routes[0]",
        "neither a quality canary nor a scheduled eval",
    ),
    (
        schedule_of_another_route,
        "DR403",
        Severity.WARNING,
        "serving.routes[0]",
        "quality floor (0.9)",
    ),
    (
        scheduled_set_undeclared,
        "DR405",
        Severity.ERROR,
        "testing.scheduled_evals[0].eval_set",
        "in no eval set of the plan",
    ),
    (gate_set_too_small, "DR404", Severity.WARNING, "eval_sets[0]", "10 examples"),
    (
        canary_set_undeclared,
        "DR405",
        Severity.ERROR,
        "serving.routes[0].canary.eval_set",
        "in no eval set of the plan",
    ),
    (no_restore_tests, "DR501", Severity.ERROR, "testing", "no restore-test cadence"),
    (rare_restore_tests, "DR501", Severity.WARNING, "testing.restore_test_every", "180d"),
    (no_failover_drills, "DR502", Severity.ERROR, "testing", "quarterly"),
    (yearly_failover_drills, "DR502", Severity.ERROR, "testing.failover_drill_every", "365d"),
    (no_regional_failover, "DR503", Severity.ERROR, "testing", "regional-failover"),
    (rare_regional_failover, "DR503", Severity.ERROR, "testing.regional_failover_every", "730d"),
    (no_gamedays, "DR504", Severity.INFO, "testing", "game-day"),
    (
        hourly_vector_vs_1h_rpo,
        "DR601",
        Severity.ERROR,
        "vector_stores[0].schedule",
        "achievable RPO 1h15m (snapshot every 1h + copy to us-replica every 15m) exceeds "
        "the 1h target of tier 'critical'",
    ),
    (credits_as_dr, "DR701", Severity.ERROR, "providers[0].credits_counted_as_dr", "credits"),
    (sla_not_recorded, "DR702", Severity.WARNING, "serving.routes[0]", "'openai'"),
    (status_page_missing_route, "DR801", Severity.WARNING, "serving.routes[0]", "status page"),
    (no_offsite_replica, "DR901", Severity.WARNING, "repositories", "every backup"),
]


@pytest.mark.parametrize(
    ("mutation", "rule_id", "severity", "field", "words"),
    FAILING,
    ids=[f"{case[1]}-{case[0].__name__}" for case in FAILING],
)
def test_rule_fails(
    starter_data: Data,
    from_data: FromData,
    mutation: Callable[[Data], None],
    rule_id: str,
    severity: Severity,
    field: str,
    words: str,
) -> None:
    mutation(starter_data)
    plan = from_data(starter_data)
    found = [v for v in lint(plan) if v.rule == rule_id and v.field == field]
    assert found, lint(plan)
    violation = found[0]
    assert violation.severity == severity
    assert words in violation.message
    assert violation.hint
    assert violation.file == "drkit.yaml"
    assert violation.line == plan.locate(*_path(plan, field)).line
    assert violation.line is not None


def _path(plan: Plan, field: str) -> tuple[str | int, ...]:
    for key in plan.source.lines:
        if field_name(key) == field:
            return key
    raise AssertionError(f"no line recorded for {field}")


def test_every_builtin_rule_has_a_failing_case() -> None:
    covered = {case[1] for case in FAILING} | {"DR304"}  # DR304 below: needs state
    assert {r.id for r in rules()} <= covered


def test_single_provider_critical_route_points_at_targets_line(
    starter_text: str, from_text: Callable[..., Plan]
) -> None:
    start = starter_text.index("        - name: openai-us")
    end = starter_text.index("\n# Vector stores")
    text = starter_text[:start] + starter_text[end:]
    plan = from_text(text)
    [violation] = [v for v in lint(plan) if v.rule == "DR101"]
    targets_line = 1 + text.splitlines().index("      targets:")
    assert violation.line == targets_line
    assert violation.where == f"drkit.yaml:{targets_line}"


def test_regional_failover_not_required_without_multi_region(
    starter_data: Data, from_data: FromData
) -> None:
    del starter_data["testing"]["regional_failover_every"]
    starter_data["tiers"]["critical"]["multi_region"] = False
    starter_data["tiers"]["critical"]["critical"] = False
    assert [v.rule for v in lint(from_data(starter_data))] == []


def test_a_watched_floor_passes_dr403(starter_data: Data, from_data: FromData) -> None:
    """A floor with a scheduled eval (the starter) passes, and so does one with a canary
    instead; a non-critical route needs neither."""
    plan = from_data(starter_data)
    assert plan.testing.scheduled_evals[0].route == "assistant"
    assert plan.serving.routes[0].quality is not None
    assert [v.rule for v in lint(plan) if v.rule in ("DR403", "DR405")] == []
    starter_data["testing"]["scheduled_evals"] = []
    _route(starter_data)["canary"] = {"eval_set": "./evals/golden/canary.jsonl"}
    assert [v.rule for v in lint(from_data(starter_data)) if v.rule in ("DR403", "DR405")] == []
    del _route(starter_data)["canary"]
    _route(starter_data)["tier"] = "standard"
    assert "DR403" not in [v.rule for v in lint(from_data(starter_data))]


def test_non_critical_tier_allows_single_provider(starter_data: Data, from_data: FromData) -> None:
    one_provider(starter_data)
    one_region(starter_data)
    _route(starter_data)["tier"] = "standard"
    assert [v.rule for v in lint(from_data(starter_data)) if v.rule.startswith("DR1")] == []


def test_model_dataset_version_exists_needs_state(starter_data: Data, from_data: FromData) -> None:
    plan = from_data(starter_data)
    assert not [v for v in lint(plan) if v.rule == "DR304"]  # no state: rule skipped
    ctx = LintContext(dataset_versions=lambda name: {"v0"} if name == "train" else None)
    [violation] = [v for v in lint(plan, ctx) if v.rule == "DR304"]
    assert "train@v1" in violation.message
    assert violation.field == "models[0].trained_on[0].version"
    assert violation.severity == Severity.ERROR
    assert "versions: v0" in violation.message
    # day one: the dataset has no version at all yet -> a warning, not an error, not silence
    never = LintContext(dataset_versions=lambda name: set())
    [first] = [v for v in lint(plan, never) if v.rule == "DR304"]
    assert first.severity == Severity.WARNING
    assert "no version in the repository yet" in first.message
    ok = LintContext(dataset_versions=lambda name: {"v1"})
    assert not [v for v in lint(plan, ok) if v.rule == "DR304"]


@pytest.fixture
def drill_overdue_rule() -> Iterator[Rule]:
    """A rule the drills layer could add: failover drill overdue, fed by drkit's state."""

    def check(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
        assert ctx.last_success is not None
        every = plan.testing.failover_drill_every
        last = ctx.last_success("failover_drill", None)
        if every is not None and (last is None or (ctx.now - last).total_seconds() > every):
            yield Finding(("testing", "failover_drill_every"), "failover drill overdue", "run it")

    rule = register(
        Rule(
            "DR590",
            "test-failover-drill-overdue",
            Severity.ERROR,
            "the last failover drill is within its cadence",
            "Quarterly: failover drills",
            check,
            needs=("last_success",),
        )
    )
    yield rule
    unregister(rule.id)


def test_registry_accepts_state_fed_rules(
    drill_overdue_rule: Rule, starter_data: Data, from_data: FromData
) -> None:
    plan = from_data(starter_data)
    assert lint(plan) == []  # without state the rule is skipped
    now = datetime(2026, 11, 26, tzinfo=UTC)
    stale = LintContext(now=now, last_success=lambda a, s: datetime(2026, 1, 1, tzinfo=UTC))
    fresh = LintContext(now=now, last_success=lambda a, s: datetime(2026, 11, 1, tzinfo=UTC))
    [violation] = lint(plan, stale)
    assert (violation.rule, violation.field) == ("DR590", "testing.failover_drill_every")
    assert lint(plan, fresh) == []
    assert lint(plan, stale, only={"DR101"}) == []
    with pytest.raises(ValueError, match="already registered"):
        register(drill_overdue_rule)


def test_rules_are_documented_data() -> None:
    for r in rules():
        assert r.id.startswith("DR")
        assert r.name
        assert r.summary
        assert r.framework
        assert r.severity in Severity


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_auth_off_on_loopback_or_acknowledged_is_allowed(
    starter_data: Data, from_data: FromData, host: str
) -> None:
    open_gateway_on_network(starter_data)
    starter_data["serving"]["gateway"]["host"] = host
    assert "DR105" not in [v.rule for v in lint(from_data(starter_data))]
    starter_data["serving"]["gateway"]["host"] = "0.0.0.0"
    starter_data["serving"]["auth"]["allow_unauthenticated_network"] = True
    assert "DR105" not in [v.rule for v in lint(from_data(starter_data))]
