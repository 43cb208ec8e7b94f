"""Input is checked where it is given: URL schemes no connector handles, durations past
the upper bound, and `restore latest` that could mean several components."""

from __future__ import annotations

from pathlib import Path

import pytest

from drkit.cli.main import main
from drkit.types import MAX_DURATION_S, parse_duration


@pytest.fixture
def local_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--local"]) == 0
    return tmp_path / "drkit.yaml"


def _line(path: Path, needle: str) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if needle in t)


def test_check_rejects_a_repository_scheme_no_connector_handles(
    local_plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = local_plan.read_text()
    replica = text.split("- name: replica\n      url: ")[1].split("\n")[0]
    local_plan.write_text(text.replace(replica, '"ftp://backup.example/drkit"'))
    capsys.readouterr()
    assert main(["plan", "check"]) == 2
    err = capsys.readouterr().err
    line = _line(local_plan, "ftp://")
    assert f"drkit.yaml:{line}: repositories.replicas[0].url: no object-store connector" in err
    assert "ftp://" in err
    assert "file://" in err.splitlines()[-1]  # the hint lists what is handled


def test_check_rejects_an_engine_scheme_no_connector_handles(
    local_plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local_plan.write_text(
        local_plan.read_text()
        + "vector_stores:\n  - {name: kb, tier: standard, engine: 'weaviate://h:8080',\n"
        "     schedule: 1h, retention: {keep_daily: 30}, replicate_to: [replica]}\n"
    )
    capsys.readouterr()
    assert main(["plan", "check"]) == 2
    err = capsys.readouterr().err
    assert "vector_stores[0].engine: no vector-store connector handles weaviate://" in err
    assert "lancedb://" in err


@pytest.mark.parametrize("text", ["101y", "99999999999d", 1e300, float("inf")])
def test_durations_have_an_upper_bound(text: str | float) -> None:
    with pytest.raises(ValueError, match="100 years"):
        parse_duration(text)


def test_longest_duration_is_accepted() -> None:
    assert parse_duration("100y") == MAX_DURATION_S


def test_plan_with_an_absurd_duration_is_a_plan_error(
    local_plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local_plan.write_text(
        local_plan.read_text().replace("restore_test_every: 30d", "restore_test_every: 9999999y")
    )
    capsys.readouterr()
    assert main(["plan", "check"]) == 2
    err = capsys.readouterr().err
    assert f"drkit.yaml:{_line(local_plan, '9999999y')}" in err
    assert "100 years" in err


def test_restore_latest_with_several_components_asks_for_one(
    local_plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    assert main(["backup"]) == 0
    capsys.readouterr()
    assert main(["restore", "latest", "--to", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'latest' is ambiguous" in err
    assert "golden-qa, train" in err
    assert "Try: name one: --component golden-qa" in err
    assert not (tmp_path / "out").exists()
    assert main(["restore", "latest", "--component", "train", "--to", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[0] == "shard-0000.jsonl"
