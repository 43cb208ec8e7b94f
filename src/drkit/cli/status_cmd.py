"""``drkit status serve``: the status page and its internal side (a thin shell over
:mod:`drkit.web.app`)."""

from __future__ import annotations

from typing import Annotated

import typer

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, announce

status_app = typer.Typer(
    name="status",
    help="The status page: component states from live DR signals.",
    no_args_is_help=True,
)


@status_app.command("serve")
def serve_cmd(
    plan: PlanOption = DEFAULT_PLAN,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8788,
    as_json: JsonOption = False,
) -> None:
    """Serve the public status page, its JSON API and Atom feed, and the internal side
    (incidents, drafts, the war room; key in DRKIT_STATUS_KEY) until interrupted."""
    import os

    from drkit.extras import require

    require("status", "drkit status serve")
    import uvicorn

    from drkit.plan.loader import load_plan

    loaded = load_plan(plan)  # bad input fails here, in one line, before anything listens
    # cli and web are sibling shells: uvicorn imports the app by name, as any ASGI server
    # would (`uvicorn drkit.web.app:from_env --factory`), with the plan path in the env
    os.environ["DRKIT_STATUS_PLAN"] = str(plan)
    keyed = bool(os.environ.get("DRKIT_STATUS_KEY") or os.environ.get("DRKIT_STATUS_KEY_FILE"))
    announce(
        {
            "listening": f"http://{host}:{port}",
            "internal": keyed,
            "title": loaded.status_page.title,
        },
        as_json,
        f"drkit status page on http://{host}:{port} (internal side "
        f"{'on' if keyed else 'closed: set DRKIT_STATUS_KEY'})",
    )
    uvicorn.run(
        "drkit.web.app:from_env",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(status_app, name="status")
