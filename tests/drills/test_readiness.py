"""`drkit drill list` says what each data scenario still needs, step by step, on the plan
`drkit init --local` writes: no repository, then no snapshot, no verification, no replica."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drkit.cli.main import main


def _rows(plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    capsys.readouterr()  # what the commands before printed
    assert main(["drill", "list", "--plan", str(plan), "--json"]) == 0
    return {str(r["scenario"]): r for r in json.loads(capsys.readouterr().out)}


def test_drill_list_names_what_is_missing_until_the_drills_can_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    assert main(["init", "--local", str(tmp_path)]) == 0
    plan = tmp_path / "drkit.yaml"
    capsys.readouterr()

    rows = _rows(plan, capsys)
    assert rows["provider-outage"]["runnable"] is True
    for name in ("data-corruption", "region-outage"):
        assert rows[name]["runnable"] is False
        assert "does not exist: run drkit repo init" in str(rows[name]["why_not"])

    assert main(["repo", "init", "--plan", str(plan)]) == 0
    rows = _rows(plan, capsys)
    assert (
        "needs a verified snapshot of train: run drkit backup train && drkit verify train"
        in rows["data-corruption"]["needs"]  # type: ignore[operator]
    )

    assert main(["backup", "--plan", str(plan)]) == 0
    rows = _rows(plan, capsys)
    assert rows["data-corruption"]["needs"] == [
        "needs a verified snapshot of train: run drkit verify train",
        "needs a verified snapshot of golden-qa: run drkit verify golden-qa",
    ]
    replica = (tmp_path / "backups" / "us-east").resolve().as_uri()
    assert rows["region-outage"]["needs"] == [
        f"repository 'replica' does not exist: run drkit copy --to {replica} --init"
    ]

    for comp in ("train", "golden-qa"):
        assert main(["verify", comp, "--plan", str(plan)]) == 0
    assert main(["copy", "--to", replica, "--init", "--plan", str(plan)]) == 0
    rows = _rows(plan, capsys)
    for name in ("provider-outage", "data-corruption", "region-outage"):
        assert rows[name]["runnable"] is True, rows[name]
        assert rows[name]["needs"] == []


def test_drill_list_without_password_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRKIT_PASSWORD", raising=False)
    assert main(["init", "--local", str(tmp_path)]) == 0
    capsys.readouterr()
    rows = _rows(tmp_path / "drkit.yaml", capsys)
    assert "DRKIT_PASSWORD" in str(rows["data-corruption"]["why_not"])
