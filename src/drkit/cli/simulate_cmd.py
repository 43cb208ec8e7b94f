"""``drkit simulate``: stand-ins for the things drkit protects, for drills and demos."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, announce
from drkit.errors import SecretMissing, UsageError

if TYPE_CHECKING:
    from drkit.connectors.llm.simulator import ProviderSimulator

simulate_app = typer.Typer(
    name="simulate",
    help="Simulators for drills: an LLM provider with scriptable faults.",
    no_args_is_help=True,
)


@simulate_app.command("provider")
def provider_cmd(
    dialect: Annotated[
        str, typer.Option("--dialect", help="Wire dialect to speak: openai or anthropic.")
    ],
    port: Annotated[
        int, typer.Option("--port", help="API port on the host (0 picks a free one).")
    ] = 0,
    admin_port: Annotated[
        int | None,
        typer.Option(
            "--admin-port", help="Admin API port (default: --port + 10000, or a free one)."
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option("--seed", help="Seed for answers and fault draws.")] = 0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="A fault to start with, KIND[:VALUE][,key=value...]; repeatable "
            "(see docs/simulator.md).",
        ),
    ] = None,
    echo: Annotated[
        bool, typer.Option("--echo", help="Answer with the last user message's text.")
    ] = False,
    token_delay: Annotated[
        float, typer.Option("--token-delay", help="Seconds between streamed tokens.")
    ] = 0.0,
    api_key_env: Annotated[
        str | None,
        typer.Option("--api-key-env", help="Only accept the key in this environment variable."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Run an OpenAI- or Anthropic-compatible provider simulator until interrupted."""
    from drkit.connectors.llm.faults import parse_fault

    if dialect not in ("openai", "anthropic"):
        raise UsageError(
            f"--dialect {dialect!r}: must be openai or anthropic", hint="--dialect openai"
        )
    faults = [parse_fault(text) for text in fault or ()]
    sim = _open_simulator(
        dialect,
        host=host,
        port=port,
        admin_port=default_admin_port(port) if admin_port is None else admin_port,
        seed=seed,
        faults=faults,
        mode="echo" if echo else "lorem",
        api_key=_key_from(api_key_env),
        token_delay=token_delay,
    )
    info = {
        "dialect": dialect,
        "base_url": sim.base_url,
        "admin_url": sim.admin_url,
        "seed": seed,
        "faults": [f.to_dict() for f in faults],
    }
    announce(
        info,
        as_json,
        f"{dialect} provider simulator: base_url {sim.base_url}  "
        f"admin {sim.admin_url}/_sim/faults  (seed {seed}; Ctrl-C stops)",
    )
    with contextlib.suppress(KeyboardInterrupt):
        sim.run()


def _key_from(api_key_env: str | None) -> str | None:
    """The key the simulator accepts (``--api-key-env``), or None: any key."""
    if not api_key_env:
        return None
    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise SecretMissing(
            f"--api-key-env {api_key_env}: the variable is not set",
            hint=f"export {api_key_env}=... or drop --api-key-env",
        )
    return api_key


def _open_simulator(
    dialect: str, *, host: str, port: int, admin_port: int, **options: Any
) -> ProviderSimulator:
    """A bound :class:`~drkit.connectors.llm.simulator.ProviderSimulator`; a port that
    cannot be bound is the user's input (exit 2, with a hint)."""
    from drkit.connectors.llm.simulator import ProviderSimulator

    try:
        return ProviderSimulator(
            dialect,  # type: ignore[arg-type]
            host=host,
            port=port,
            admin_port=admin_port,
            **options,
        )
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port} / admin {admin_port}: {exc.strerror or exc}",
            hint="choose other ports with --port and --admin-port",
        ) from exc


#: the admin API's default distance from the API port: far enough that simulators on
#: neighbouring ports (9101, 9102, ...) never take each other's port, as + 1 did
ADMIN_PORT_OFFSET = 10000


def default_admin_port(port: int) -> int:
    """``port + 10000``; a free port (0) when ``port`` is 0 or the sum is past 65535."""
    if port and port + ADMIN_PORT_OFFSET <= 65535:
        return port + ADMIN_PORT_OFFSET
    return 0


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
