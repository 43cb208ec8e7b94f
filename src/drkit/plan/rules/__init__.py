"""The built-in lint rules, one module per part of the framework.

Importing this package registers them (``drkit.plan.lint.rules()`` does it).
Ids: DR1xx serving, DR2xx vector stores and tiers' data, DR3xx training data and
lineage, DR4xx evals, DR5xx testing cadence, DR6xx achievable RPO/RTO, DR7xx providers,
DR8xx communication, DR9xx repositories.
"""

from drkit.plan.rules import data, providers, quality, serving, testing

__all__ = ["data", "providers", "quality", "serving", "testing"]
