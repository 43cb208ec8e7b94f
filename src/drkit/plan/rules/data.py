"""Vector stores, training data, models, evals, and the RPO their schedules allow."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.plan.analysis import achievable_rpo, offsite_replicas, replicas_of, retention_span
from drkit.plan.lint import Finding, LintContext, Severity, rule
from drkit.plan.models import Component, Plan
from drkit.types import format_duration

DAY = 86400.0
RETAIN_MIN = 30 * DAY
RETAIN_MAX = 90 * DAY


def _kind(component: Component) -> str:
    return component.kind.replace("_", " ")


@rule(
    "DR201",
    "vector-snapshot-daily",
    Severity.ERROR,
    "every vector store is snapshotted at least daily",
    "Backup snapshots. Daily snapshots of vector indices and metadata.",
)
def vector_snapshot_daily(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, store in enumerate(plan.vector_stores):
        if store.schedule is None:
            yield Finding(
                ("vector_stores", i),
                f"vector store {store.name!r} has no snapshot schedule",
                "add `schedule: 1d` (or shorter, e.g. 1h, or cron '0 * * * *')",
            )
        elif store.schedule.max_gap() > DAY:
            yield Finding(
                ("vector_stores", i, "schedule"),
                f"vector store {store.name!r} is snapshotted every "
                f"{format_duration(store.schedule.max_gap())} at worst; needs at least daily",
                "use `schedule: 1d` or shorter",
            )


@rule(
    "DR202",
    "vector-retention-30-90d",
    Severity.ERROR,
    "every vector store keeps snapshots for 30 to 90 days",
    "Retain 30-90 days typically.",
)
def vector_retention(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, store in enumerate(plan.vector_stores):
        span = retention_span(store)
        if span is None:
            yield Finding(
                ("vector_stores", i),
                f"vector store {store.name!r} has no retention",
                "add `retention: {keep_daily: 30, keep_within: 30d}`",
            )
        elif span < RETAIN_MIN:
            yield Finding(
                ("vector_stores", i, "retention"),
                f"vector store {store.name!r} keeps snapshots for {format_duration(span)}; "
                "needs at least 30d",
                "raise keep_daily to 30 or keep_within to 30d",
            )
        elif span > RETAIN_MAX:
            yield Finding(
                ("vector_stores", i, "retention"),
                f"vector store {store.name!r} keeps snapshots for {format_duration(span)}, "
                "beyond the usual 90d (storage cost)",
                "keep 30d to 90d unless a regulation asks for more",
                Severity.WARNING,
            )


@rule(
    "DR203",
    "vector-cross-region-replica",
    Severity.ERROR,
    "every vector store is copied to a replica in another region",
    "Cross-region replication. Pinecone, Weaviate, Qdrant all support multi-region. "
    "Configure during initial setup, not during disaster.",
)
def vector_cross_region(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, store in enumerate(plan.vector_stores):
        if not offsite_replicas(plan, store):
            home = plan.component_region(store)
            yield Finding(
                ("vector_stores", i),
                f"vector store {store.name!r} is not replicated outside region {home!r}",
                "add a replica in another region to `replicate_to:`",
            )


@rule(
    "DR205",
    "vector-standby-other-region",
    Severity.ERROR,
    "a vector store's warm standby is in another region than the store",
    "Cross-region replication. Failover to secondary region within minutes.",
)
def vector_standby_other_region(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, store in enumerate(plan.vector_stores):
        standby = store.standby
        home = plan.component_region(store)
        if standby is not None and standby.region == home:
            yield Finding(
                ("vector_stores", i, "standby", "region"),
                f"the warm standby of vector store {store.name!r} is in the store's own region "
                f"{home!r}: a regional outage takes both, and region-outage cannot promote it",
                "keep the standby in another region (vector_stores[].standby.region)",
            )


@rule(
    "DR204",
    "multi-region-tier-data",
    Severity.ERROR,
    "data of a multi-region tier is replicated to another region",
    "Tiered DR. Critical workloads multi-region; others single-region with backup.",
)
def multi_region_tier_data(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for path, comp in plan.components():
        tier = plan.tiers.get(comp.tier) if comp.tier else None
        if comp.kind == "vector_store" or tier is None or not tier.multi_region:
            continue  # vector stores: DR203 always requires it
        if comp.kind == "model" and getattr(comp, "path", None) is None:
            continue
        if not offsite_replicas(plan, comp):
            yield Finding(
                path,
                f"{_kind(comp)} {comp.name!r} is in multi-region tier {comp.tier!r} but not "
                "replicated to another region",
                "add a replica in another region to `replicate_to:`",
            )


@rule(
    "DR301",
    "dataset-versioned",
    Severity.ERROR,
    "training datasets are versioned",
    "Object storage with versioning. S3, GCS, Azure Blob all support versioning and "
    "replication. Enable both.",
)
def dataset_versioned(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, ds in enumerate(plan.datasets):
        if not ds.versioned:
            yield Finding(
                ("datasets", i),
                f"dataset {ds.name!r} is not versioned",
                "set `versioned: true` so each snapshot is a version models can name",
            )


@rule(
    "DR302",
    "dataset-replicated",
    Severity.ERROR,
    "training datasets are backed up on a schedule and replicated",
    "Object storage with versioning. S3, GCS, Azure Blob all support versioning and "
    "replication. Enable both.",
)
def dataset_replicated(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    yield from _backed_up_and_replicated(
        plan,
        "datasets",
        "dataset",
        list(plan.datasets),
        unscheduled="has no backup schedule",
        schedule_hint="add `schedule: 1d` (or what its RPO needs)",
    )


@rule(
    "DR303",
    "model-lineage",
    Severity.ERROR,
    "every model names the versioned dataset versions it was trained on",
    "Dataset lineage tracking. Which dataset version trained which model? Track so you "
    "can reconstruct.",
)
def model_lineage(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    datasets = {d.name: d for d in plan.datasets}
    for i, model in enumerate(plan.models):
        if not model.trained_on:
            yield Finding(
                ("models", i),
                f"model {model.name!r} version {model.version} does not name the dataset "
                "versions it was trained on",
                "add `trained_on: [{dataset: NAME, version: VERSION}]`",
            )
        for j, used in enumerate(model.trained_on):
            ds = datasets.get(used.dataset)
            if ds is not None and not ds.versioned:
                yield Finding(
                    ("models", i, "trained_on", j),
                    f"model {model.name!r} was trained on {used.dataset}@{used.version}, but "
                    f"dataset {used.dataset!r} is not versioned: that version cannot be restored",
                    f"set `versioned: true` on dataset {used.dataset!r}",
                )


@rule(
    "DR304",
    "model-dataset-version-exists",
    Severity.ERROR,
    "the dataset versions models were trained on exist in the repository",
    "Training data loss is recoverable if lineage is preserved; models can be retrained.",
    needs=("dataset_versions",),
)
def model_dataset_version_exists(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    assert ctx.dataset_versions is not None
    for i, model in enumerate(plan.models):
        for j, used in enumerate(model.trained_on):
            known = ctx.dataset_versions(used.dataset)
            if known is None or used.version in known:
                continue
            where = ("models", i, "trained_on", j, "version")
            if not known:  # day one: never backed up (a warning, as a drill never run)
                yield Finding(
                    where,
                    f"model {model.name!r} names {used.dataset}@{used.version}, but dataset "
                    f"{used.dataset!r} has no version in the repository yet",
                    f"back it up: `drkit backup {used.dataset}` records v1, the next v2..., "
                    "or `--version LABEL`",
                    Severity.WARNING,
                )
                continue
            yield Finding(
                where,
                f"model {model.name!r} names {used.dataset}@{used.version}, which is not "
                f"in the repository (versions: {', '.join(sorted(known))})",
                f"back up that version (`drkit backup {used.dataset} --version "
                f"{used.version}`) or fix the version",
            )


def _backed_up_and_replicated(
    plan: Plan,
    section: str,
    what: str,
    items: list[Component],
    *,
    unscheduled: str = "is not backed up (no schedule)",
    schedule_hint: str = "add `schedule: 1d`",
) -> Iterator[Finding]:
    """Findings for items of ``section`` with no backup schedule or no replica."""
    for i, item in enumerate(items):
        if item.schedule is None:
            yield Finding((section, i), f"{what} {item.name!r} {unscheduled}", schedule_hint)
        if not replicas_of(plan, item):
            yield Finding(
                (section, i),
                f"{what} {item.name!r} is not replicated",
                "add a replica repository to `replicate_to:`",
            )


@rule(
    "DR401",
    "eval-sets-backed-up",
    Severity.ERROR,
    "eval sets are backed up on a schedule and replicated",
    "Eval sets are intellectual property. Version controlled, backed up, replicated.",
)
def eval_sets_backed_up(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    yield from _backed_up_and_replicated(plan, "eval_sets", "eval set", list(plan.eval_sets))


@rule(
    "DR402",
    "eval-results-backed-up",
    Severity.ERROR,
    "eval results are backed up on a schedule and replicated",
    "Historical eval results. Track over time; supports regression detection. Back up to "
    "object storage.",
)
def eval_results_backed_up(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    yield from _backed_up_and_replicated(
        plan, "eval_results", "eval results", list(plan.eval_results)
    )


@rule(
    "DR601",
    "rpo-achievable",
    Severity.ERROR,
    "the RPO the schedule and replication allow is within the tier's RPO target",
    "RPO target: minutes to hours depending on data sensitivity. Replication lag "
    "determines actual RPO.",
)
def rpo_achievable(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for path, comp in plan.components():
        tier = plan.tiers.get(comp.tier) if comp.tier else None
        estimate = achievable_rpo(plan, comp)
        if tier is None or estimate is None:
            continue
        if estimate.total > tier.rpo:
            yield Finding(
                (*path, "schedule"),
                f"{_kind(comp)} {comp.name!r}: achievable RPO {format_duration(estimate.total)} "
                f"({estimate.explain()}) exceeds the {format_duration(tier.rpo)} target of "
                f"tier {comp.tier!r}",
                "snapshot more often, copy to the replica more often (copy_every), or move "
                "the component to a tier whose RPO it can meet",
            )
