"""Models and lineage: the model registry, alias history, and what each version came from.

Event-sourced in drkit's state (:mod:`drkit.state.store`): a registration is a
``model.registered`` event, an alias move a ``model.alias_set`` event; the registry is
the fold of those events (:mod:`drkit.lineage.registry`), so it is backed up and
restored with the state and the ledger is append-only by construction. The lineage
graph (:mod:`drkit.lineage.graph`) joins them with ``eval.run`` events. This package
never imports the gateway, evals, status or cost siblings; the eval gate that needs the
registry and the evals together is composed in :mod:`drkit.workspace.models`.
"""
