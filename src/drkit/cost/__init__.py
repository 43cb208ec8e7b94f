"""What DR costs per tier, from measured sizes and runs (``drkit cost``; docs/cost.md).

A sibling of the gateway, status, evals and lineage: it reads their events from drkit's
state and never imports them. :mod:`drkit.workspace.costing` gathers the measurements.
"""
