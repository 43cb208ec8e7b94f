"""The plan tests/cost price: two tiers, a file:// primary and a replica in another
region, a critical route over two vendors, two small datasets (one replicated)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def cost_plan(tmp_path: Path, **cost: Any) -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "name": "cost-test",
        "tiers": {
            "critical": {"rto": "15m", "rpo": "1h", "multi_region": True},
            "standard": {"rto": "4h", "rpo": "1d"},
        },
        "repositories": {
            "primary": {"name": "primary", "url": f"file://{tmp_path / 'repo'}", "region": "eu"},
            "replicas": [{"name": "far", "url": f"file://{tmp_path / 'far'}", "region": "us"}],
        },
        "serving": {
            "routes": [
                {
                    "name": "chat",
                    "tier": "critical",
                    "targets": [
                        {
                            "name": "a",
                            "provider": "openai",
                            "region": "eu",
                            "model": "m",
                            "base_url": "http://127.0.0.1:9",
                        },
                        {
                            "name": "b",
                            "provider": "anthropic",
                            "region": "us",
                            "model": "m",
                            "base_url": "http://127.0.0.1:9",
                        },
                    ],
                }
            ]
        },
        "datasets": [
            {"name": "train", "path": "./train", "tier": "critical", "replicate_to": ["far"]},
            {"name": "notes", "path": "./notes", "tier": "standard"},
        ],
        "providers": [{"name": "openai", "sla": 99.9}, {"name": "anthropic", "sla": 99.5}],
        "cost": {
            "storage_per_gb_month": 20.0,
            "egress_per_gb": 10.0,
            "sizes_gb": {"train": 5, "notes": 1},
            "standby_per_month": {"critical": 300},
            "outage_cost_per_hour": {"critical": 1000},
            **cost,
        },
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for name in ("train", "notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.bin").write_bytes(os.urandom(200_000))
        (tmp_path / name / "same.txt").write_text("shared line\n" * 5000)
    return path
