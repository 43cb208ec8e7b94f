"""Sizes of the demo stack (a module of its own so that the CLI can list them cheaply)."""

from __future__ import annotations

SIZES = {"small": (40, 8, 32, 6), "default": (2000, 40, 256, 40)}
"""size -> (vectors, dataset shards, records per shard, eval questions)"""
