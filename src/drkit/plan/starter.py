"""The commented starter plan ``drkit init`` writes; it passes ``drkit plan check``."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from drkit.errors import UsageError

PLAN_FILE = "drkit.yaml"

_TEMPLATE = """\
# drkit.yaml: the disaster-recovery plan of an AI stack.
# Reference of every field: docs/plan.md. Check it with `drkit plan check`.
# Durations: 30s 15m 1h 7d 2w 1y. Schedules: an interval (1h) or cron ("0 * * * *", UTC).
# ${{VAR}} and ${{VAR:-default}} are replaced by environment variables when loading;
# secrets stay in the environment: *_env fields name the variable to read.
version: 1
name: my-assistant

# Recovery classes. RTO: longest tolerable outage; RPO: most data you may lose.
# Critical workloads are multi-region; others single-region with backups.
tiers:
  critical: {{rto: 5m, rpo: 1h, multi_region: true}}
  standard: {{rto: 24h, rpo: 24h}}

# Where snapshots go: a primary repository and replicas in other regions.
# URLs: file:///path, or s3://bucket/prefix?endpoint=https://... for object storage.
repositories:
  primary:
    name: primary
    url: {primary_url}
    region: eu-west
    password_env: DRKIT_PASSWORD
  replicas:
    - name: us-replica
      url: {replica_url}
      region: us-east
      password_env: DRKIT_PASSWORD
      copy_every: 15m            # replication lag bound; counts toward the achievable RPO

# Model serving: the gateway fails over between targets in order (first is primary).
serving:
  auth: {{client_keys_env: DRKIT_GATEWAY_KEYS}}   # comma-separated keys clients must send
  routes:
    - name: assistant            # what clients send as `model`
      tier: critical
      on_stream_failure: error   # after the first token: error, or continue on the next
      deadlines: {{connect: 2s, first_token: 10s, stream_idle: 15s, total: 120s}}
      # the mean eval score (0-1) a run through the route must reach: a provider answering
      # HTTP 200 with wrong answers is down too (docs/evals.md)
      quality: {{floor: 0.9}}
      targets:
        - name: anthropic-eu
          provider: anthropic    # wire dialect: anthropic | openai
          region: eu-west
          model: claude-sonnet-4-5
          base_url: https://api.anthropic.com
          api_key_env: ANTHROPIC_API_KEY
        - name: openai-us
          provider: openai
          region: us-east
          model: gpt-4.1
          base_url: https://api.openai.com/v1
          api_key_env: OPENAI_API_KEY
          system_prompt: null    # optional prompt prepended for this target only
          params: {{}}             # optional parameter overrides, e.g. {{temperature: 0.2}}

# Vector stores: snapshotted at least daily, kept 30-90 days, copied to another region.
vector_stores:
  - name: kb
    tier: critical
    engine: {engine_url}
    collections: []              # empty: every collection
    schedule: 30m
    retention: {{keep_last: 48, keep_daily: 30, keep_within: 30d}}
    replicate_to: [us-replica]

# Training data: versioned and replicated; models name the versions they were trained on.
datasets:
  - name: train
    path: ./data/train           # relative to this file
    tier: standard
    versioned: true
    schedule: 12h
    retention: {{keep_daily: 30, keep_monthly: 12}}
    replicate_to: [us-replica]

models:
  - name: support-ft
    version: "1"
    tier: standard
    # v1: the version the first `drkit backup train` records; `plan check` says whether
    # it is in the repository (DR304)
    trained_on: [{{dataset: train, version: "v1"}}]

# Eval sets are intellectual property; eval history supports regression detection.
eval_sets:
  - {{name: golden-qa, path: ./evals/golden, tier: standard, schedule: 12h,
     replicate_to: [us-replica]}}
eval_results:
  - {{name: eval-history, path: ./evals/results, tier: standard, schedule: 12h,
     replicate_to: [us-replica]}}

# How often DR is proven (the framework: quarterly failover drills, a yearly regional one).
testing:
  restore_test_every: 30d
  failover_drill_every: 90d
  regional_failover_every: 365d
  gameday_every: 180d
  # `drkit agent run` sends this eval set through the route every 6h and fails the job
  # when the run scores under the floor or regresses (docs/evals.md#scheduled-evals)
  scheduled_evals:
    - {{eval_set: ./evals/golden/golden.jsonl, route: assistant, every: 6h}}

# Provider SLAs, reviewed. Credits are compensation, not disaster recovery.
providers:
  - {{name: anthropic, sla: 99.9, credits_counted_as_dr: false}}
  - {{name: openai, sla: 99.9, credits_counted_as_dr: false}}

status_page:
  title: My assistant status
  components:
    - {{name: Assistant API, covers: [assistant]}}
    - {{name: Knowledge base, covers: [kb]}}

# Inputs of the cost estimate (`drkit cost`, not implemented yet): unit prices and sizes.
cost:
  currency: USD
  storage_per_gb_month: 0.023
  egress_per_gb: 0.02
  sizes_gb: {{kb: 5, train: 50}}
"""


_LOCAL_TEMPLATE = """\
# drkit.yaml, local flavour (`drkit init --local`): the whole DR cycle on this machine,
# with no secrets and no provider account. Repositories are directories under this
# project; the serving route's targets are two provider simulators, one per region:
#   drkit simulate provider --dialect openai --port 9101 --admin-port 9102 &
#   drkit simulate provider --dialect anthropic --port 9201 --admin-port 9202 &
# Reference of every field: docs/plan.md. Check it with `drkit plan check`.
# To protect your real stack, start from `drkit init` (without --local) instead.
version: 1
name: local-assistant

tiers:
  critical: {{rto: 5m, rpo: 1h, multi_region: true}}
  standard: {{rto: 24h, rpo: 24h}}

# Two regions, two local repositories; the password comes from DRKIT_PASSWORD.
repositories:
  primary:
    name: primary
    url: {primary_url}
    region: eu-west
    password_env: DRKIT_PASSWORD
  replicas:
    - name: replica
      url: {replica_url}
      region: us-east
      password_env: DRKIT_PASSWORD
      copy_every: 15m

# The gateway fails over from the eu-west simulator to the us-east one (and translates
# between the two dialects). Clients send a key listed in DRKIT_GATEWAY_KEYS.
serving:
  auth: {{client_keys_env: DRKIT_GATEWAY_KEYS}}
  routes:
    - name: assistant            # what clients send as `model`
      tier: critical
      deadlines: {{connect: 1s, first_token: 5s, stream_idle: 5s, total: 30s}}
      targets:
        - name: sim-eu
          provider: openai
          vendor: sim-openai
          region: eu-west
          model: sim-large
          base_url: http://127.0.0.1:9101/v1
          api_key: sim-key       # the simulators take any non-empty key
        - name: sim-us
          provider: anthropic
          vendor: sim-anthropic
          region: us-east
          model: sim-large
          base_url: http://127.0.0.1:9201
          api_key: sim-key

# Sample data that `drkit init --local` wrote next to this file.
datasets:
  - name: train
    path: ./data/train
    tier: critical
    versioned: true
    schedule: 30m
    retention: {{keep_last: 10, keep_daily: 30}}
    replicate_to: [replica]

eval_sets:
  - {{name: golden-qa, path: ./evals/golden, tier: standard, schedule: 12h,
     retention: {{keep_daily: 30}}, replicate_to: [replica]}}

testing:
  restore_test_every: 30d
  failover_drill_every: 90d
  regional_failover_every: 365d
  gameday_every: 180d

providers:
  - {{name: sim-openai, sla: 99.9, regions: [eu-west]}}
  - {{name: sim-anthropic, sla: 99.9, regions: [us-east]}}

status_page:
  components:
    - {{name: Assistant API, covers: [assistant]}}
"""


def _quoted(url: str) -> str:
    # a JSON string is a valid YAML double-quoted scalar; $$ keeps a literal $
    return json.dumps(url.replace("$", "$$"))


def local_plan(directory: Path) -> str:
    """The ``--local`` plan's text: repositories under ``directory``, simulated providers."""
    root = directory.resolve().as_posix()
    return _LOCAL_TEMPLATE.format(
        primary_url=_quoted(f"file://{root}/backups/eu-west"),
        replica_url=_quoted(f"file://{root}/backups/us-east"),
    )


def write_sample_data(directory: Path) -> list[Path]:
    """The ``--local`` plan's sample dataset and eval set (left alone where they exist)."""
    written: list[Path] = []
    train = directory / "data" / "train"
    golden = directory / "evals" / "golden"
    for folder, files in (
        (
            train,
            {
                f"shard-{s:04d}.jsonl": "".join(
                    json.dumps({"id": f"{s}-{i}", "text": f"sample record {s}-{i}"}) + "\n"
                    for i in range(50)
                )
                for s in range(4)
            },
        ),
        (
            golden,
            {
                f"q{i:04d}.json": json.dumps(
                    {"id": f"q{i}", "question": f"What is step {i}?", "answer": f"s{i}"}
                )
                + "\n"
                for i in range(10)
            },
        ),
    ):
        if folder.exists():
            continue
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        written.append(folder)
    return written


def starter_plan(directory: Path) -> str:
    """The starter plan's text, with repository and engine paths under ``directory``."""
    root = directory.resolve().as_posix()

    return _TEMPLATE.format(
        primary_url=_quoted(f"file://{root}/backups/eu-west"),
        replica_url=_quoted(f"file://{root}/backups/us-east"),
        engine_url=_quoted(f"qdrant+local://{root}/qdrant"),
    )


def write_starter(directory: Path, *, force: bool = False, local: bool = False) -> Path:
    """Write ``directory/drkit.yaml`` atomically; refuse to overwrite unless ``force``.

    ``local``: the plan wired to provider simulators and repositories under ``directory``,
    plus sample data for it (:func:`write_sample_data`).
    """
    target = directory / PLAN_FILE
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is not a directory", hint="pass a directory to drkit init")
    if target.exists() and not force:
        raise UsageError(
            f"{target} already exists", hint="pass --force to overwrite it, or choose another DIR"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".drkit-init-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(local_plan(directory) if local else starter_plan(directory))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if local:
            write_sample_data(directory)
    except OSError as exc:
        raise UsageError(
            f"cannot write {target}: {exc.strerror or exc}",
            hint="check that the directory is writable",
        ) from None
    return target
