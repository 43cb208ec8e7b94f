"""The plan's building blocks: name and URL types, the base model, tiers and their
quality thresholds (:mod:`drkit.plan.models` has the whole plan)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from drkit.plan.schedule import PositiveDur

#: Names of things in the plan: letters, digits, ``.``, ``_``, ``-``; used on the CLI.
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64),
]
#: A region label (``eu-west``, ``us-east-1``); compared for equality only.
Region = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64),
]
#: The name of an environment variable.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]


def _number_to_str(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


#: A version label; ``3`` and ``"3"`` are the same version.
VersionLabel = Annotated[str, BeforeValidator(_number_to_str), StringConstraints(min_length=1)]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://api.openai.com/v1")
    return value.rstrip("/")


HttpUrlStr = Annotated[str, AfterValidator(_http_url)]


def _has_scheme(value: str) -> str:
    if "://" not in value:
        raise ValueError(f"{value!r} is not a URL: expected scheme://..., e.g. file:///srv/repo")
    return value


UrlStr = Annotated[str, AfterValidator(_has_scheme)]

NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PlanModel(BaseModel):
    """Base of every plan model: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --- tiers -----------------------------------------------------------------------------


class Quality(PlanModel):
    """What an eval run must reach (docs/evals.md); each field unset here falls through to
    the next, less specific place (eval set, model, route, tier, then the default)."""

    floor: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None,
        description="the mean score an eval run must reach to pass (its pass_threshold); "
        "unset everywhere: only max_errors decides",
    )
    max_drop: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="largest tolerated drop of the mean score against a baseline (0)"
    )
    alpha: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="significance level of the paired comparison (0.05)"
    )
    max_errors: NonNegInt | None = Field(
        None, description="examples that may fail to get an answer in a passing run (0)"
    )


class Tier(PlanModel):
    """A recovery class: how fast (RTO) and how little data loss (RPO) it needs."""

    rto: PositiveDur = Field(description="recovery time objective: longest tolerable outage")
    rpo: PositiveDur = Field(description="recovery point objective: most data one may lose")
    multi_region: bool = Field(
        False, description="must survive the loss of a region (critical workloads)"
    )
    quality: Quality | None = Field(None, description="eval thresholds of this tier's models")
    critical: bool | None = Field(
        None, description="mission-critical; defaults to true for the tier named 'critical'"
    )
    description: str | None = None
