"""The plan layer: the typed ``drkit.yaml`` model, its loader and the lint rules.

``load_plan(path)`` returns a :class:`~drkit.plan.models.Plan` or raises
:class:`drkit.errors.PlanError`; ``drkit.plan.lint.lint(plan)`` returns violations.
"""
