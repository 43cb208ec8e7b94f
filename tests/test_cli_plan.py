"""`drkit init` and `drkit plan check|show|schema`: exit codes and output, plain and --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drkit.cli.main import main
from drkit.plan.starter import starter_plan

DRKIT = Path(sys.executable).parent / "drkit"


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "drkit.yaml"
    path.write_text(starter_plan(tmp_path))
    return path


def rewrite(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text, old
    text = text.replace(old, new, 1)
    path.write_text(text)
    return text


def line_of(text: str, needle: str) -> int:
    return 1 + next(
        i for i, line in enumerate(text.splitlines()) if needle in line and "#" not in line[:2]
    )


def drop_second_target(path: Path) -> str:
    text = path.read_text()
    start = text.index("        - name: openai-us")
    text = text[:start] + text[text.index("\n# Vector stores") :]
    path.write_text(text)
    return text


def test_init_then_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new"
    assert main(["init", str(target)]) == 0
    assert f"wrote {target / 'drkit.yaml'}" in capsys.readouterr().out
    assert main(["plan", "check", "--plan", str(target / "drkit.yaml")]) == 0
    out = capsys.readouterr().out
    assert "passes the framework check: 0 errors, 0 warnings" in out
    # no repository yet: DR304 (train@v1 exists) says it could not check, never silently
    assert "info     DR304" in out
    assert "could not be checked" in out


def test_init_refuses_to_overwrite(plan_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file.write_text("mine\n")
    assert main(["init", str(plan_file.parent)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err
    assert "Try: pass --force" in err
    assert plan_file.read_text() == "mine\n"  # untouched
    assert main(["init", str(plan_file.parent), "--force", "--json"]) == 0
    # every JSON object carries its schema_version (a deliberate addition)
    assert json.loads(capsys.readouterr().out) == {"schema_version": 1, "path": str(plan_file)}
    assert "version: 1" in plan_file.read_text()
    assert [p.name for p in plan_file.parent.iterdir()] == ["drkit.yaml"]  # no temp files


def test_init_into_a_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["init", str(blocker)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_check_single_provider_fails_at_the_targets_line(
    plan_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = drop_second_target(plan_file)
    line = line_of(text, "      targets:")
    assert main(["plan", "check", "--plan", str(plan_file)]) == 1
    captured = capsys.readouterr()
    assert f"{plan_file}:{line}  error    DR101  serving.routes[0].targets" in captured.out
    assert "Try: add a target from another provider" in captured.out
    assert "fails the framework check" in captured.out
    assert captured.err.startswith("error: plan check found 2 errors")

    assert main(["plan", "check", "--plan", str(plan_file), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["errors"] == 2
    dr101 = next(v for v in report["violations"] if v["rule"] == "DR101")
    assert dr101 == {
        "rule": "DR101",
        "name": "critical-route-providers",
        "severity": "error",
        "message": "critical route 'assistant' has 1 provider (anthropic); needs at least 2",
        "hint": dr101["hint"],
        "file": str(plan_file),
        "line": line,
        "field": "serving.routes[0].targets",
    }


def test_check_warnings_do_not_fail(plan_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rewrite(plan_file, "  - {name: openai, sla: 99.9, credits_counted_as_dr: false}\n", "")
    assert main(["plan", "check", "--plan", str(plan_file)]) == 0
    out = capsys.readouterr().out
    assert "warning  DR702" in out
    assert "passes the framework check: 0 errors, 1 warning" in out
    assert main(["plan", "check", "--plan", str(plan_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["errors"], report["warnings"]) == (True, 0, 1)


def test_plan_option_from_environment(
    plan_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRKIT_PLAN", str(plan_file))
    assert main(["plan", "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"] == str(plan_file)


BAD_INPUTS = [
    (
        "malformed YAML",
        "collections: []",
        "collections: [docs",
        "    schedule: 30m",
        "",
        "malformed YAML",
    ),
    (
        "unknown key",
        "    schedule: 30m",
        "    schedual: 30m",
        "schedual:",
        "vector_stores[0].schedual",
        "unknown key 'schedual'",
    ),
    (
        "wrong type",
        "copy_every: 15m",
        "copy_every: [15m]",
        "copy_every:",
        "repositories.replicas[0].copy_every",
        "not a list",
    ),
    (
        "missing env var",
        "model: gpt-4.1",
        "model: ${UNSET_MODEL_VAR}",
        "${UNSET_MODEL_VAR}",
        "serving.routes[0].targets[1].model",
        "environment variable UNSET_MODEL_VAR is not set",
    ),
    (
        "bad duration",
        "    schedule: 30m",
        "    schedule: 5 mins",
        "5 mins",
        "vector_stores[0].schedule",
        "invalid duration '5 mins'",
    ),
    (
        "duplicate names",
        "{name: golden-qa,",
        "{name: kb,",
        "{name: kb,",
        "eval_sets[0].name",
        "duplicate route/component name 'kb'",
    ),
    (
        "undefined tier",
        "      tier: critical\n",
        "      tier: gold\n",
        "tier: gold",
        "serving.routes[0].tier",
        "tier 'gold' is not defined",
    ),
    (
        "undefined repository",
        "    replicate_to: [us-replica]",
        "    replicate_to: [nowhere]",
        "[nowhere]",
        "vector_stores[0].replicate_to[0]",
        "replica repository 'nowhere' is not defined",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "words"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
@pytest.mark.parametrize("command", ["check", "show"])
def test_bad_input_is_one_line_and_a_hint(
    plan_file: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    old: str,
    new: str,
    needle: str,
    field: str,
    words: str,
) -> None:
    text = rewrite(plan_file, old, new)
    assert main(["plan", command, "--plan", str(plan_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2, captured.err
    where = f"error: {plan_file}:{line_of(text, needle)}: "
    assert lines[0].startswith(where + (f"{field}: " if field else "")), lines[0]
    assert words in lines[0]
    assert lines[1].startswith("Try: ")
    assert "Traceback" not in captured.err


def test_missing_plan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "check", "--plan", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err
    assert "no such plan file" in err
    assert "Try: run `drkit init`" in err


def test_show_masks_secrets_and_normalises(
    plan_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite(plan_file, "    password_env: DRKIT_PASSWORD\n", '    password: "${PW}"\n')
    rewrite(plan_file, "api_key_env: OPENAI_API_KEY", 'api_key: "${OPENAI_KEY}"')
    rewrite(plan_file, "copy_every: 15m", "copy_every: 90m")
    rewrite(plan_file, 'url: "file://', 'url: "s3://user:${S3_SECRET}@host/bucket?x=file://')
    monkeypatch.setenv("PW", "pw-secret-1")
    monkeypatch.setenv("OPENAI_KEY", "sk-secret-2")
    monkeypatch.setenv("S3_SECRET", "s3-secret-3")
    for extra in ([], ["--json"]):
        assert main(["plan", "show", "--plan", str(plan_file), *extra]) == 0
        out = capsys.readouterr().out
        for secret in ("pw-secret-1", "sk-secret-2", "s3-secret-3"):
            assert secret not in out
        assert "**********" in out
    assert main(["plan", "show", "--plan", str(plan_file), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["repositories"]["primary"]["password"] == "**********"
    assert shown["repositories"]["primary"]["url"].startswith("s3://user:**********@host/")
    assert shown["repositories"]["replicas"][0]["copy_every"] == "1h30m"
    assert shown["serving"]["routes"][0]["deadlines"]["total"] == "2m"
    assert shown["vector_stores"][0]["schedule"] == "30m"


def test_show_plain_lists_recovery_points(
    plan_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "show", "--plan", str(plan_file)]) == 0
    out = capsys.readouterr().out
    assert "rto: 5m" in out
    assert "Recovery points" in out
    assert "45m" in out  # kb: 30m schedule + 15m copy


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert {"tiers", "repositories", "serving", "vector_stores"} <= set(schema["properties"])


def test_real_console_script(plan_file: Path) -> None:
    ok = subprocess.run(
        [str(DRKIT), "plan", "check", "--plan", str(plan_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "passes the framework check" in ok.stdout
    drop_second_target(plan_file)
    failing = subprocess.run(
        [str(DRKIT), "plan", "check", "--plan", str(plan_file), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failing.returncode == 1
    assert json.loads(failing.stdout)["errors"] == 2
    rewrite(plan_file, "    schedule: 30m", "    schedule: 5 mins")
    bad = subprocess.run(
        [str(DRKIT), "plan", "check", "--plan", str(plan_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "invalid duration '5 mins'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_init_local_writes_a_plan_that_passes_with_sample_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--local", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"schema_version": 1, "path": str(tmp_path / "drkit.yaml")}
    assert main(["plan", "check", "--plan", str(tmp_path / "drkit.yaml")]) == 0
    assert len(list((tmp_path / "data" / "train").iterdir())) == 4
    assert len(list((tmp_path / "evals" / "golden").iterdir())) == 10
    text = (tmp_path / "drkit.yaml").read_text()
    assert "http://127.0.0.1:9101/v1" in text
    assert "http://127.0.0.1:9201" in text
    assert f"file://{tmp_path.resolve().as_posix()}/backups/us-east" in text
    assert "api.openai.com" not in text
    assert "api.anthropic.com" not in text
