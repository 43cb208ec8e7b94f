"""Paired comparison of two eval runs on the same eval-set version: the regression gate.

Examples are paired by id. Pass/fail scores (every score 0 or 1) use the exact McNemar
test (a two-sided binomial test on the discordant pairs); graded scores use the
Wilcoxon signed-rank test, with a paired bootstrap confidence interval of the mean
difference. Runs of different eval-set versions are refused (:class:`UsageError`,
exit 2): rescore the baseline on the new version first.

A candidate *regressed* when the drop is significant (``p < alpha``) and larger than
``max_drop``; *improved* when the gain is significant; otherwise no significant change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from drkit.errors import UsageError
from drkit.plan.quality import min_detectable_drop

Verdict = Literal["regressed", "improved", "no significant change"]

__all__ = ["Comparison", "Verdict", "compare", "min_detectable_drop"]


@dataclass(frozen=True, slots=True)
class Comparison:
    baseline: str
    candidate: str
    eval_set_digest: str
    n: int
    test: str
    baseline_mean: float
    candidate_mean: float
    effect: float
    p_value: float
    alpha: float
    max_drop: float
    ci_low: float
    ci_high: float
    losses: int
    wins: int
    min_detectable_drop: float
    verdict: Verdict
    #: the harness commits the runs recorded (None: the run recorded none)
    baseline_harness_commit: str | None = None
    candidate_harness_commit: str | None = None

    @property
    def regressed(self) -> bool:
        return self.verdict == "regressed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["regressed"] = self.regressed
        return d


def compare(  # long: the paired gate's steps in the order docs/evals.md gives them
    baseline: Sequence[Mapping[str, Any]],
    candidate: Sequence[Mapping[str, Any]],
    *,
    alpha: float = 0.05,
    max_drop: float = 0.0,
    baseline_id: str = "baseline",
    candidate_id: str = "candidate",
    seed: int = 0,
    baseline_harness: str | None = None,
    candidate_harness: str | None = None,
    allow_harness_change: bool = False,
) -> Comparison:
    """Compare per-example rows (``example_id``, ``score``, ``eval_set_digest``). Runs
    that recorded different harness commits (``*_harness``) are refused unless
    ``allow_harness_change``: a changed scorer changes the scores."""
    digests = {r["eval_set_digest"] for r in baseline} | {r["eval_set_digest"] for r in candidate}
    if len(digests) != 1:
        raise UsageError(
            "the two runs used different eval-set versions "
            f"({', '.join(sorted(d[:12] for d in digests))}); a paired comparison needs one",
            hint="rescore the baseline on the candidate's eval-set version "
            "(`drkit eval run` with the same file), then compare",
        )
    if baseline_harness != candidate_harness and not allow_harness_change:
        raise UsageError(
            "the two runs used different eval harness commits "
            f"({_short(baseline_harness)} vs {_short(candidate_harness)}); the scores may "
            "differ because the harness did",
            hint="rerun the baseline with the candidate's harness commit, or pass "
            "--allow-harness-change to compare anyway",
        )
    base = {str(r["example_id"]): float(r["score"]) for r in baseline}
    cand = {str(r["example_id"]): float(r["score"]) for r in candidate}
    ids = sorted(base.keys() & cand.keys())
    if not ids:
        raise UsageError("the two runs have no example in common")
    a = np.array([base[i] for i in ids])
    b = np.array([cand[i] for i in ids])
    diff = b - a
    n = len(ids)
    losses, wins = int((diff < 0).sum()), int((diff > 0).sum())
    binary = bool(np.isin(np.concatenate([a, b]), (0.0, 1.0)).all())
    if binary:
        test = "exact McNemar"
        discordant = losses + wins
        p = float(stats.binomtest(losses, discordant, 0.5).pvalue) if discordant else 1.0
    else:
        test = "Wilcoxon signed-rank"
        p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    if np.any(diff != 0) and n > 1:
        boot = stats.bootstrap(
            (diff,),
            np.mean,
            confidence_level=1 - alpha,
            n_resamples=2000,
            random_state=np.random.default_rng(seed),
            method="percentile",
        )
        low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    else:
        low = high = float(diff.mean())
    effect = float(diff.mean())
    verdict: Verdict = "no significant change"
    if p < alpha and effect < 0 and -effect > max_drop:
        verdict = "regressed"
    elif p < alpha and effect > 0:
        verdict = "improved"
    return Comparison(
        baseline=baseline_id,
        candidate=candidate_id,
        eval_set_digest=digests.pop(),
        n=n,
        test=test,
        baseline_mean=float(a.mean()),
        candidate_mean=float(b.mean()),
        effect=effect,
        p_value=p,
        alpha=alpha,
        max_drop=max_drop,
        ci_low=low,
        ci_high=high,
        losses=losses,
        wins=wins,
        min_detectable_drop=min_detectable_drop(n, alpha),
        verdict=verdict,
        baseline_harness_commit=baseline_harness,
        candidate_harness_commit=candidate_harness,
    )


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "none recorded"
