"""``drkit demo``: an example AI stack from embedded parts, then the whole DR cycle.

Built in a work directory (deterministic under ``seed``):

- ``vectors/``: an embedded LanceDB collection ``docs`` seeded with synthetic embeddings
  (LanceDB rather than Qdrant local mode: qdrant-client's local mode commits every point
  to SQLite on its own, about 15 s per 2,000 records here, and the demo restores the
  collection several times);
- ``data/train/``: a training dataset (JSONL shards); ``evals/golden/``: an eval set;
- ``repos/primary`` (region eu-west) and ``repos/replica`` (region us-east), each with a
  generated password in ``secrets/`` (mode 0600, never printed);
- ``drkit.yaml``: the plan; its route has a target per region, played by provider
  simulators during the drills; a second route, ``assistant-model``, serves the model
  registry's alias ``@assistant:champion``.

Then: backup (files and the collection) -> register two versions of the model
``assistant`` trained on the dataset's snapshot, ``champion`` set to 1 then 2 -> copy to
the replica -> verify (restore tests) -> a few writes after the backup (what a restore
would lose) -> game day (every scenario the plan supports), the scorecard, and the HTML
report left in the work directory.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from drkit.connectors.objectstore.registry import open_store
from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField, make_batch
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.errors import CheckFailed, UsageError
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.repository import KdfParams, Repository
from drkit.repository.replica import CopyResult, copy
from drkit.workspace.costing import record_copy
from drkit.workspace.demo_sizes import SIZES
from drkit.workspace.protect import BackupItem, backup_jobs, run_backup
from drkit.workspace.workspace import GameDay, RestoreCheck, Workspace, run_gameday

DIMENSION = 64
WRITES_AFTER_BACKUP = 3


@dataclass
class DemoResult:
    directory: Path
    plan: Path
    steps: list[dict[str, Any]]
    gameday: GameDay

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "plan": str(self.plan),
            "steps": self.steps,
            **self.gameday.to_json(),
        }


def _kdf() -> KdfParams:
    # the test suite sets DRKIT_KDF=fast; the demo otherwise uses real key stretching
    return KdfParams.fast() if os.environ.get("DRKIT_KDF") == "fast" else KdfParams()


def _write_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")


def _dataset(root: Path, rng: random.Random, shards: int, per_shard: int) -> None:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "recovery",
        "backup",
        "region",
        "replica",
        "vector",
        "model",
        "eval",
    ]
    root.mkdir(parents=True)
    for s in range(shards):
        lines = []
        for i in range(per_shard):
            text = " ".join(rng.choice(words) for _ in range(12))
            lines.append(json.dumps({"id": f"{s}-{i}", "text": text, "label": rng.randrange(4)}))
        (root / f"shard-{s:04d}.jsonl").write_text("\n".join(lines) + "\n")


def _evals(root: Path, rng: random.Random, n: int) -> None:
    root.mkdir(parents=True)
    for i in range(n):
        q = {"id": f"q{i}", "question": f"What is step {i} of the runbook?", "answer": f"s{i}"}
        q["difficulty"] = rng.choice(["easy", "medium", "hard"])
        (root / f"q{i:04d}.json").write_text(json.dumps(q, sort_keys=True) + "\n")


def _vectors(url: str, rng: random.Random, n: int) -> int:
    config = CollectionConfig(name="docs", vectors=(VectorField("", DIMENSION, Metric.COSINE),))
    gen = np.random.default_rng(rng.randrange(2**32))
    mat = gen.standard_normal((n, DIMENSION)).astype(np.float32)
    store = open_vector_store(url)
    try:
        store.create(config)
        batch = make_batch(
            config,
            [str(i) for i in range(n)],
            {"": mat},
            [{"doc": i % 97, "source": "synthetic"} for i in range(n)],
            [f"synthetic document {i}" for i in range(n)],
        )
        store.import_batches("docs", [batch])
        return store.count("docs")
    finally:
        store.close()


def _plan(root: Path) -> dict[str, Any]:
    """The demo's plan (written as YAML in this order)."""
    return {
        "version": 1,
        "name": "demo-assistant",
        "description": "drkit demo: an example AI stack built from embedded parts",
        "tiers": {
            "critical": {"rto": "5m", "rpo": "15m", "multi_region": True},
            "standard": {"rto": "24h", "rpo": "24h"},
        },
        "repositories": {
            "primary": _repo(root, "primary", "eu-west"),
            "replicas": [_repo(root, "replica", "us-east", copy_every="5m")],
        },
        "serving": _serving(),
        **_data_components(root),
        "testing": {
            "restore_test_every": "30d",
            "failover_drill_every": "90d",
            "regional_failover_every": "365d",
            "gameday_every": "180d",
            "budget": 20000,
        },
        "providers": [
            {"name": "sim-openai", "sla": 99.9, "regions": ["eu-west"]},
            {"name": "sim-anthropic", "sla": 99.9, "regions": ["us-east"]},
        ],
        "status_page": {
            "components": [
                {"name": "Assistant API", "covers": ["assistant"]},
                {"name": "Knowledge base", "covers": ["kb", "train"]},
            ]
        },
        # what `drkit cost` multiplies the measured sizes and runs by (example prices)
        "cost": {
            "outage_cost_per_hour": {"critical": 2000, "standard": 50},
            "standby_per_month": {"critical": 120},
            "drill_cost_per_hour": 30,
            "responders_per_drill": 2,
            "responder_cost_per_hour": 90,
        },
    }


def _repo(root: Path, name: str, region: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "url": (root / "repos" / name).as_uri(),
        "region": region,
        # absolute: `drkit snapshots/restore --plan ...` work from any directory
        "password_file": str(root / "secrets" / f"{name}.password"),
        **extra,
    }


def _serving() -> dict[str, Any]:
    """A critical route over the two simulators (``drkit demo`` starts them) and one that
    serves the model registry's alias."""
    deadlines = {"connect": "1s", "first_token": "2s", "stream_idle": "2s", "total": "30s"}
    return {
        "auth": {"client_keys_env": "DRKIT_DEMO_GATEWAY_KEYS"},
        "gateway": {"health": {"eject_after": 2, "eject_for": "2s", "probe_every": "1s"}},
        "routes": [
            {
                "name": "assistant",
                "tier": "critical",
                "deadlines": deadlines,
                "targets": [
                    {
                        "name": "sim-eu",
                        "provider": "openai",
                        "vendor": "sim-openai",
                        "region": "eu-west",
                        "model": "sim-large",
                        "base_url": "http://127.0.0.1:18101/v1",
                    },
                    {
                        "name": "sim-us",
                        "provider": "anthropic",
                        "vendor": "sim-anthropic",
                        "region": "us-east",
                        "model": "sim-large",
                        "base_url": "http://127.0.0.1:18201",
                    },
                ],
            },
            {
                # follows the registry: the model-regression drill breaks and restores it
                "name": "assistant-model",
                "tier": "standard",
                "deadlines": deadlines,
                "targets": [
                    {
                        "name": "sim-model",
                        "provider": "openai",
                        "vendor": "sim-openai",
                        "region": "eu-west",
                        "model": "@assistant:champion",
                        "base_url": "http://127.0.0.1:18101/v1",
                    }
                ],
            },
        ],
    }


def _data_components(root: Path) -> dict[str, Any]:
    """The stack's data: a vector store, a versioned dataset and an eval set."""
    return {
        "vector_stores": [
            {
                "name": "kb",
                "tier": "critical",
                "engine": "lancedb://" + str(root / "vectors"),
                "collections": ["docs"],
                "schedule": "5m",
                "retention": {"keep_daily": 30, "keep_within": "7d"},
                "replicate_to": ["replica"],
            }
        ],
        "datasets": [
            {
                "name": "train",
                "path": "data/train",
                "tier": "critical",
                "versioned": True,
                "schedule": "5m",
                "retention": {"keep_daily": 30},
                "replicate_to": ["replica"],
            }
        ],
        "eval_sets": [
            {
                "name": "golden-qa",
                "path": "evals/golden",
                "tier": "standard",
                "schedule": "12h",
                "retention": {"keep_daily": 30},
                "replicate_to": ["replica"],
            }
        ],
    }


def build_stack(directory: Path, *, seed: int = 0, size: str = "default") -> Path:
    """Create the example stack in ``directory`` (must be absent or empty); returns the plan."""
    if size not in SIZES:
        raise UsageError(f"unknown demo size {size!r}", hint="one of: " + ", ".join(SIZES))
    root = directory.absolute()
    if root.exists() and any(root.iterdir()):
        raise UsageError(
            f"demo directory {root} exists and is not empty",
            hint="remove it, or choose another with --dir",
        )
    n_vectors, shards, per_shard, questions = SIZES[size]
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    _dataset(root / "data" / "train", rng, shards, per_shard)
    _evals(root / "evals" / "golden", rng, questions)
    _vectors("lancedb://" + str(root / "vectors"), rng, n_vectors)
    for name in ("primary", "replica"):
        _write_secret(root / "secrets" / f"{name}.password")
    plan = root / "drkit.yaml"
    header = (
        "# drkit demo plan (generated). The route's targets are provider simulators:\n"
        "#   drkit simulate provider --dialect openai --port 18101\n"
        "#   drkit simulate provider --dialect anthropic --port 18201\n"
        "# Drills start their own seeded simulators in their place.\n"
    )
    plan.write_text(header + yaml.safe_dump(_plan(root), sort_keys=False))
    return plan


def init_repositories(ws: Workspace) -> None:
    """Create every repository of the plan (with the passwords in its plan entries)."""
    for m in ws.stack().repositories():
        Repository.init(open_store(m.url), ws.password(m), kdf=_kdf()).close()


def backup_all(ws: Workspace) -> list[BackupItem]:
    """Snapshot every component of the plan (vector stores too) into the primary."""
    jobs, _ = backup_jobs(ws.plan, [], all_components=True)
    with ws.stack().open_repository(ws.plan.repositories.primary.name) as repo:
        return run_backup(repo, jobs)


def register_models(ws: Workspace) -> list[str]:
    """Two versions of ``assistant`` trained on the dataset's snapshot; ``champion`` names
    version 1, then 2 (what ``@assistant:champion`` serves)."""
    from drkit.lineage.registry import Registry
    from drkit.workspace.models import register

    registry = Registry(ws.state())
    stack = ws.stack()
    out = []
    for version, upstream in (("1", "sim-small"), ("2", "sim-large")):
        reg = register(
            registry,
            ws.plan,
            "assistant",
            version,
            repo=lambda: stack.open_repository(ws.plan.repositories.primary.name),
            upstream={"openai": upstream},
            trained_on=["train@v1"],
            description=f"demo release {version}",
        )
        registry.set_alias("assistant", "champion", version, reason=f"demo: release {version}")
        out.append(reg.version.ref)
    return out


def copy_to_replicas(ws: Workspace) -> list[CopyResult]:
    stack = ws.stack()
    out = []
    for replica in ws.plan.repositories.replicas:
        with (
            stack.open_repository(ws.plan.repositories.primary.name) as src,
            stack.open_repository(replica.name) as dst,
        ):
            out.append(copy(src, dst))
        record_copy(ws.state(), ws.plan, replica.name, out[-1])
    return out


def verify_all(ws: Workspace) -> list[RestoreCheck]:
    """A restore test of every component backed up; raises when one fails."""
    results: list[RestoreCheck] = []
    with ws.stack().open_repository(ws.plan.repositories.primary.name) as repo:
        for _, comp in ws.plan.components():
            if isinstance(comp, VectorStoreModel) or getattr(comp, "path", None):
                results += ws.restore_test(comp.name, repo=repo)
    for r in results:
        if not r.ok:
            raise CheckFailed(f"restore test of {r.label} failed: {'; '.join(r.problems)}")
    return results


def write_after_backup(ws: Workspace, seed: int, n: int = WRITES_AFTER_BACKUP) -> None:
    """Writes after the backup, what a restore of that backup loses: ``n`` new dataset
    files, and in the ``docs`` collection ``n`` new records and ``n`` changed ones."""
    train = ws.plan.resolve_path(str(getattr(ws.plan.component("train"), "path", "")))
    rng = random.Random(seed + 1)
    for i in range(n):
        row = {"id": f"late-{i}", "text": f"written after the backup {rng.random():.6f}"}
        (train / f"late-{i:04d}.jsonl").write_text(json.dumps(row) + "\n")
    with ws.vector_store("kb") as store:
        config = store.describe("docs")
        gen = np.random.default_rng(rng.randrange(2**32))
        count = store.count("docs")
        ids = [f"late-{i}" for i in range(n)] + [str(rng.randrange(count)) for _ in range(n)]
        ids = list(dict.fromkeys(ids))
        batch = make_batch(
            config,
            ids,
            {"": gen.standard_normal((len(ids), DIMENSION)).astype(np.float32)},
            [{"doc": i, "source": "late"} for i in range(len(ids))],
            [f"written after the backup {i}" for i in ids],
        )
        store.import_batches("docs", [batch])


def run_demo(
    directory: Path,
    *,
    seed: int = 0,
    size: str = "default",
    say: Callable[[str], None] = lambda _: None,
    on_drill: Callable[[str], None] | None = None,
) -> DemoResult:
    """Build the stack, then backup -> copy -> verify -> writes -> game day."""
    steps: list[dict[str, Any]] = []

    def step(name: str, started: float, **info: Any) -> None:
        took = round(time.monotonic() - started, 3)
        steps.append({"step": name, "duration_s": took, **info})
        detail = ", ".join(f"{k}={v}" for k, v in info.items())
        say(f"{name}: {detail} ({took:.1f}s)")

    t = time.monotonic()
    plan_path = build_stack(directory, seed=seed, size=size)
    ws = Workspace.load(plan_path)
    try:
        step("build stack", t, plan=str(plan_path), vectors=SIZES[size][0])

        t = time.monotonic()
        init_repositories(ws)
        regions = [f"{m.name}@{m.region}" for m in ws.stack().repositories()]
        step("init repositories", t, repositories=" ".join(regions))

        t = time.monotonic()
        items = backup_all(ws)
        step(
            "backup",
            t,
            snapshots=" ".join(
                f"{i.snapshot.component}"
                + (f"/{i.collection}" if i.collection else "")
                + f"@{i.snapshot.short_id}"
                for i in items
            ),
        )

        t = time.monotonic()
        models = register_models(ws)
        step("register models", t, versions=" ".join(models), champion="assistant@2")

        t = time.monotonic()
        copied = copy_to_replicas(ws)
        step(
            "copy to replica",
            t,
            snapshots=sum(len(c.snapshots_copied) for c in copied),
            bytes=sum(c.bytes_copied for c in copied),
        )

        t = time.monotonic()
        tests = verify_all(ws)
        step("verify", t, restore_tests=len(tests), ok=all(r.ok for r in tests))

        t = time.monotonic()
        write_after_backup(ws, seed)
        step(
            "writes after the backup",
            t,
            files=WRITES_AFTER_BACKUP,
            records=2 * WRITES_AFTER_BACKUP,
        )

        t = time.monotonic()
        day = run_gameday(
            ws, seed=seed, report=directory.absolute() / "gameday-report.html", on_drill=on_drill
        )
        step("game day", t, drills=len(day.journals), passed=day.passed)
        return DemoResult(directory.absolute(), plan_path, steps, day)
    finally:
        ws.close()
