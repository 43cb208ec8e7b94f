"""OpenLineage out: the RunEvents of backups, model registrations and eval runs, received
on a real HTTP server on 127.0.0.1 and in a file, each validated against the OpenLineage
JSON schema (tests/data/openlineage/, copied from the spec) and drkit's own facets against
docs/openlineage/drkit-facets.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from tests.servers import closed_port, http_server_in_thread

from drkit.cli.main import main
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.lineage.openlineage import EMIT_FAILED, FACETS_SCHEMA, PRODUCER
from drkit.state.store import StateStore

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "data" / "openlineage"
DRKIT_FACETS = ROOT / "docs" / "openlineage" / "drkit-facets.json"


def _schemas() -> Registry[Any]:
    docs = [SPEC / "OpenLineage.json", *sorted((SPEC / "facets").glob("*.json")), DRKIT_FACETS]
    resources = [Resource.from_contents(json.loads(p.read_text())) for p in docs]
    return Registry().with_resources((r.id() or "", r) for r in resources)


SCHEMAS = _schemas()
EVENT = Draft202012Validator(
    json.loads((SPEC / "OpenLineage.json").read_text()),
    registry=SCHEMAS,
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from event["run"].get("facets", {}).items()
    yield from event["job"].get("facets", {}).items()
    for ds in [*event.get("inputs", []), *event.get("outputs", [])]:
        for key in ("facets", "inputFacets", "outputFacets"):
            yield from ds.get(key, {}).items()


#: the producer of the facet the client itself adds (run tag openlineage_client_version)
CLIENT = "https://github.com/OpenLineage/OpenLineage/tree/"


def validate(event: dict[str, Any]) -> None:
    """The event against OpenLineage.json, then every facet against the schema its
    ``_schemaURL`` names (standard or drkit's), with drkit as its producer (the client's
    own ``tags`` facet: the client)."""
    EVENT.validate(event)
    assert event["producer"] == PRODUCER
    for key, facet in _facets(event):
        if key == "tags":
            assert facet["_producer"].startswith(CLIENT), facet
        else:
            assert facet["_producer"] == PRODUCER, key
        url = facet["_schemaURL"]
        assert key.startswith("drkit_") == url.startswith(FACETS_SCHEMA), (key, url)
        Draft202012Validator({"$ref": url}, registry=SCHEMAS).validate(facet)


class Receiver:
    """An OpenLineage HTTP endpoint: keeps each POSTed event and its Authorization."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.status = 201
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/api/v1/lineage" and outer.status < 300:
                    outer.events.append(json.loads(body))
                    outer.auth.append(self.headers.get("authorization"))
                self.send_response(outer.status if self.path == "/api/v1/lineage" else 404)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def of(self, job: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["job"]["name"] == job]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver()
    with http_server_in_thread(srv.server):
        yield srv


@pytest.fixture
def plan_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    return tmp_path / "drkit.yaml"


@pytest.fixture
def starter(plan_file: Path) -> Path:
    tmp_path = plan_file.parent
    assert main(["repo", "init"]) == 0
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "part.jsonl").write_text('{"x": 1}\n')
    return tmp_path / "drkit.yaml"


def _lineage(plan: Path, destination: str) -> None:
    with plan.open("a") as f:
        f.write(f"lineage:\n  openlineage: {destination}\n")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[Any, str]:
    capsys.readouterr()
    got = main([*argv, "--json"])
    out = capsys.readouterr()
    assert got == code, out.err
    return (json.loads(out.out) if out.out.strip() else None), out.err


def _eval_set(path: Path) -> Path:
    rows = [{"id": f"q{i}", "prompt": f"say {i}", "expected": f"say {i}"} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_backup_register_and_eval_run_events_over_http(
    starter: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # no destination in the plan: nothing is sent, even with the client's own variable set
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    _cli(capsys, "backup", "train")
    assert receiver.events == []

    monkeypatch.setenv("OL_TEST_KEY", "ol-secret-key")
    _lineage(starter, f"{{url: {receiver.url}, api_key_env: OL_TEST_KEY, namespace: drkit-test}}")
    (starter.parent / "data" / "train" / "part.jsonl").write_text('{"x": 2}\n')
    backed, _ = _cli(capsys, "backup", "train")
    snapshot = backed[0]["snapshot"]
    start, done = receiver.of("backup.train")
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == done["run"]["runId"]
    [out] = done["outputs"]
    assert (out["namespace"], out["name"]) == ("drkit-test", "train")
    assert out["facets"]["version"]["datasetVersion"] == snapshot
    assert out["facets"]["drkit_snapshot"]["version"] == "v2"
    assert out["outputFacets"]["outputStatistics"]["fileCount"] == 1
    assert done["job"]["facets"]["jobType"]["jobType"] == "BACKUP"

    registered, _ = _cli(
        capsys,
        "model", "register", "assistant", "1", "--upstream", "openai=gpt-4.1",
        "--trained-on", "train@v2", "--description", "first",
    )  # fmt: skip
    start, done = receiver.of("model.register.assistant")
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    # the registration's input is the backup's output: one dataset, one version
    [inp] = done["inputs"]
    assert (inp["name"], inp["facets"]["version"]["datasetVersion"]) == ("train", snapshot)
    [model] = done["outputs"]
    assert model["name"] == "models/assistant"
    facet = model["facets"]["drkit_modelVersion"]
    assert facet["name"] == "assistant"
    assert facet["version"] == "1"
    assert facet["upstream"] == {"openai": "gpt-4.1"}
    assert facet["trainedOn"] == [f"train@{snapshot}"]
    assert facet["aliases"] == []
    assert registered["version"] == "1"

    _cli(capsys, "model", "alias", "set", "assistant", "champion", "1", "--reason", "first")
    start, done = receiver.of("model.alias.assistant")
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    assert done["inputs"] == []  # the alias named nothing before
    [named] = done["outputs"]
    assert named["facets"]["version"]["datasetVersion"] == "1"
    assert named["facets"]["drkit_modelVersion"]["aliases"] == ["champion"]

    monkeypatch.setenv("OL_SIM_KEY", "sk-ol-sim")
    sim = ProviderSimulator("openai", seed=3, mode="echo", api_key="sk-ol-sim")
    sim.start()
    try:
        es = _eval_set(starter.parent / "caps.jsonl")
        run = ["eval", "run", str(es), "--target", sim.base_url, "--api-key-env", "OL_SIM_KEY"]
        run += ["--model-version", "assistant@1"]
        summary, _ = _cli(capsys, *run)
    finally:
        sim.stop()
    start, done = receiver.of("eval.caps")
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    assert [(i["name"], i["facets"]["version"]["datasetVersion"]) for i in start["inputs"]] == [
        ("eval_sets/caps", summary["eval_set_digest"]),
        ("models/assistant", "1"),
    ]
    result = done["run"]["facets"]["drkit_evalResult"]
    assert result["runId"] == summary["run_id"]
    assert result["verdict"] == "pass"
    assert result["scores"]["mean"] == summary["mean_score"] == 1.0
    assert result["evalSetVersion"] == summary["eval_set_digest"]
    assert done["outputs"][0]["facets"]["version"]["datasetVersion"] == summary["run_id"]

    assert len(receiver.events) == 8
    for event in receiver.events:
        validate(event)
    assert set(receiver.auth) == {"Bearer ol-secret-key"}


def test_file_destination_and_a_failed_backup(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Events go to the file one JSON object a line; a job that fails is a FAIL run with
    its error, and the backup's exit code is what it would be without lineage."""
    _lineage(starter, "{file: lineage/events.jsonl}")
    _cli(capsys, "backup", "train")
    _cli(capsys, "backup", "golden-qa", code=2)  # the plan's ./evals/golden is not there
    lines = (starter.parent / "lineage" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("backup.train", "START"),
        ("backup.train", "COMPLETE"),
        ("backup.golden-qa", "START"),
        ("backup.golden-qa", "FAIL"),
    ]
    error = events[-1]["run"]["facets"]["errorMessage"]
    assert "does not exist" in error["message"]
    assert error["programmingLanguage"] == "python"
    for event in events:
        validate(event)


@pytest.mark.parametrize("down", ["closed", "500"])
def test_a_failing_destination_never_fails_the_backup(
    down: str,
    starter: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unreachable or refusing endpoint: the backup succeeds, one warning line on
    stderr, one lineage.emit_failed event in drkit's state, and nothing more is tried."""
    receiver.status = 500
    monkeypatch.setenv("OL_TEST_KEY", "ol-secret-key")
    url = f"http://127.0.0.1:{closed_port()}" if down == "closed" else receiver.url
    _lineage(starter, f"{{url: '{url}', timeout: 2s, api_key_env: OL_TEST_KEY}}")
    backed, err = _cli(capsys, "backup", "train")
    assert "ol-secret-key" not in err
    assert backed[0]["status"] == "ok"
    warnings = [line for line in err.splitlines() if "OpenLineage" in line]
    assert len(warnings) == 1, err
    assert warnings[0].startswith("warning: OpenLineage: could not send START of backup.train")
    assert ("HTTP 500" if down == "500" else "Connection") in warnings[0]
    failed = StateStore(starter.parent / "state.db").events(kind=EMIT_FAILED)
    assert [e.data["job"] for e in failed] == ["backup.train"]
    assert failed[0].data["destination"] == f"{url}/api/v1/lineage"
    assert "ol-secret-key" not in json.dumps([e.to_dict() for e in failed])
    assert receiver.events == []


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ("{file: a.jsonl, url: 'http://127.0.0.1:1'}", "give one of file or url"),
        ("{}", "give one of file or url"),
        ("{file: a.jsonl, api_key_env: KEY}", "api_key_env is for url"),
        ("{url: 'ftp://x'}", "not an http(s) URL"),
    ],
)
def test_bad_destinations_are_plan_errors(
    block: str, says: str, plan_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lineage(plan_file, block)
    capsys.readouterr()
    assert main(["plan", "check"]) == 2
    err = capsys.readouterr().err
    assert "lineage.openlineage" in err
    assert says in err
