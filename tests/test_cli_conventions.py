"""The conventions people expect of a CLI: --version, an example in every --help, shell
completion, -v/-q and structured JSON logs, exit 130 with a line on Ctrl-C, and drill
history that tells an empty filter from an empty history and refuses a bad --limit."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import typer.completion
import typer.main
from tests.test_docs import command_paths

from drkit import __version__
from drkit.cli.main import app, main


def test_version_option_and_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"drkit {__version__}\n"
    assert main(["version", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == __version__


@pytest.mark.parametrize("path", list(command_paths(typer.main.get_command(app))))
def test_every_command_help_has_an_example(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path.split(), "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich may wrap the epilog
    assert f"Example: drkit {path}" in out or "Example: DRKIT_" in out, out[-300:]


def test_shell_completion_script(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # typer finds the shell among the process's ancestors (shellingham); under a job runner
    # with no shell above pytest it finds none, so the test names bash itself
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    with pytest.raises(SystemExit) as done:  # click's completion option exits itself
        main(["--show-completion"])
    assert done.value.code in (0, None)
    script = capsys.readouterr().out
    assert "COMPREPLY" in script
    assert "_DRKIT_COMPLETE=complete_bash" in script


def test_log_format_json_is_one_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-format", "json", "-v", "version"]) == 0
    capsys.readouterr()
    logging.getLogger("drkit.test").info("request done", extra={"route": "assistant"})
    line = json.loads(capsys.readouterr().err.strip())
    assert line["level"] == "info"
    assert line["message"] == "request done"
    assert line["route"] == "assistant"
    assert line["logger"] == "drkit.test"
    assert line["time"].endswith("+00:00")


def test_quiet_logs_errors_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "version"]) == 0
    capsys.readouterr()
    logging.getLogger("drkit.test").warning("not shown")
    logging.getLogger("drkit.test").error("shown")
    err = capsys.readouterr().err
    assert "not shown" not in err
    assert "shown" in err
    assert main(["version"]) == 0  # back to the default for the tests after


def test_unknown_log_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-format", "xml", "version"]) == 2
    assert "Try: use --log-format text or json" in capsys.readouterr().err


def test_interrupted_command_exits_130_with_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import drkit.plan.loader

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(drkit.plan.loader, "load_plan", interrupted)
    assert main(["plan", "check", "--plan", str(tmp_path / "drkit.yaml")]) == 130
    err = capsys.readouterr().err
    assert "interrupted: drkit plan check stopped before it finished" in err


@pytest.fixture
def plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["init", "--local", str(tmp_path)]) == 0
    capsys.readouterr()
    return tmp_path / "drkit.yaml"


def test_drill_history_empty_and_no_match(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "history", "--plan", str(plan)]) == 0
    assert "no drills recorded yet" in capsys.readouterr().out
    assert main(["drill", "history", "--scenario", "region-outage", "--plan", str(plan)]) == 0
    assert "no drills match --scenario region-outage" in capsys.readouterr().out


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_drill_history_refuses_a_limit_below_one(
    plan: Path, limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drill", "history", "--limit", limit, "--plan", str(plan)]) == 2
    assert "--limit must be 1 or more" in capsys.readouterr().err


def test_an_empty_snapshot_listing_says_so(
    plan: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["snapshots", "--plan", str(plan)]) == 0
    assert "no snapshots yet: run `drkit backup`" in capsys.readouterr().out
    assert main(["snapshots", "--plan", str(plan), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
