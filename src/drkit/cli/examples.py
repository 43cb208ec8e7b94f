"""One example per command, shown at the end of its ``--help`` (``drkit main`` attaches
them to the commands as epilogs, so command modules stay as they are)."""

from __future__ import annotations

import typer

#: command path -> example command lines
EXAMPLES: dict[str, str] = {
    "version": "drkit version --json",
    "init": "drkit init --local tour && drkit plan check --plan tour/drkit.yaml",
    "plan check": "drkit plan check --plan drkit.yaml --json",
    "plan show": "drkit plan show --json",
    "plan schema": "drkit plan schema > drkit.schema.json",
    "repo init": "DRKIT_PASSWORD=... drkit repo init --repo file:///var/backups/drkit",
    "repo key list": "drkit repo key list",
    "repo key add": "DRKIT_NEW_PASSWORD=... drkit repo key add",
    "repo key remove": "drkit repo key remove 3f2a9c1b",
    "repo unlock": "drkit repo unlock --all",
    "backup": "drkit backup train golden-qa",
    "snapshots": "drkit snapshots --component train --json",
    "model register": "drkit model register assistant 2 --upstream openai=ft:gpt-4.1:acme:2 "
    "--trained-on train@v2",
    "model list": "drkit model list --json",
    "model show": "drkit model show assistant@2",
    "model alias set": 'drkit model alias set assistant champion 2 --reason "beats 1 on golden-qa"',
    "model alias history": "drkit model alias history assistant --at 2026-11-24T09:00:00Z",
    "model promote": "drkit model promote assistant 3 --to champion",
    "model rollback": "drkit model rollback assistant --alias champion",
    "model import mlflow": "drkit model import mlflow --tracking-uri http://127.0.0.1:5000",
    "lineage show": "drkit lineage show assistant@2",
    "lineage impact": "drkit lineage impact train@v2",
    "lineage check": "drkit lineage check --repo replica",
    "restore": "drkit restore latest --component train --to ./restored",
    "check": "drkit check --read-data-subset 1/10",
    "forget": "drkit forget --keep-daily 30 --keep-monthly 12 --prune",
    "copy": "drkit copy --to file:///mnt/replica/drkit --init",
    "repair": "drkit repair --from file:///mnt/replica/drkit",
    "verify": "drkit verify train",
    "snapshot create": "drkit snapshot create kb --collection docs",
    "snapshot restore": "drkit snapshot restore latest --to kb --collection docs_restored",
    "snapshot leftovers": "drkit snapshot leftovers kb",
    "snapshot export": "drkit snapshot export 3f2a9c1b --format parquet ./export",
    "standby sync": "drkit standby sync kb --follow",
    "standby verify": "drkit standby verify kb",
    "standby promote": "drkit standby promote kb --plan-out drkit.eu-central.yaml",
    "simulate provider": "drkit simulate provider --dialect openai --port 9101 --admin-port 9102",
    "gateway serve": "DRKIT_GATEWAY_KEYS=k1 drkit gateway serve --port 8787",
    "drill run": "drkit drill run provider-outage --seed 7",
    "drill list": "drkit drill list --json",
    "drill abort": "drkit drill abort provider-outage-20260101T120000-1a2b3c",
    "drill history": "drkit drill history --scenario region-outage --limit 5",
    "gameday": "drkit gameday --report gameday.html",
    "demo": "drkit demo --dir demo-out",
    "cost": "drkit cost --what-if kb=standard --what-if critical.multi_region=false",
    "providers": "drkit providers --window 7d",
    "eval run": "drkit eval run capitals.jsonl --route chat --pass-threshold 0.9",
    "eval show": "drkit eval show 20261202T031500-a1b2c3",
    "eval history": "drkit eval history --eval-set capitals --json",
    "eval compare": "drkit eval compare 20261202T031500-a1b2c3 20261202T041500-d4e5f6",
    "status serve": "DRKIT_STATUS_KEY=... drkit status serve --port 8788",
    "incident open": "drkit incident open 'Slow answers' -c 'Assistant API' --severity sev2",
    "incident update": "drkit incident update inc-1 --status identified -m 'Provider 503s'",
    "incident approve": "drkit incident approve inc-1",
    "incident resolve": "drkit incident resolve inc-1 -m 'Primary is back'",
    "incident role": "drkit incident role inc-1 communications 'Dana Lee'",
    "incident discard": "drkit incident discard inc-2 --reason 'false alarm: a load test'",
    "incident list": "drkit incident list --json",
    "incident show": "drkit incident show inc-1",
    "postmortem draft": "drkit postmortem inc-1 --format html -o postmortem-inc-1.html",
    "postmortem action add": "drkit postmortem action add inc-1 'Alert on primary 503s' "
    "--type prevent --owner alice --due 2026-12-31",
    "postmortem action close": "drkit postmortem action close inc-1 a1 -m 'alert shipped'",
    "postmortem action list": "drkit postmortem action list --open",
    "postmortem publish": "drkit postmortem publish inc-1 postmortem-inc-1.md",
}


def attach(app: typer.Typer, prefix: str = "") -> None:
    """Set each registered command's epilog to its example (recursively into groups)."""
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        path = f"{prefix} {name}".strip()
        example = EXAMPLES.get(path)
        if example and not info.epilog:
            info.epilog = f"Example: {example}"
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is not None:
            attach(sub, f"{prefix} {group.name or sub.info.name}".strip())
