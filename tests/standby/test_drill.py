"""region-outage with a warm standby: the promotion's RTO next to the restore's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.drills.conftest import validate_journal
from tests.drills.test_data_scenarios import Build, build, run

from drkit.cli.main import main

__all__ = ["build"]


def test_region_outage_reports_promotion_next_to_restore(
    build: Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(data: dict[str, Any]) -> None:
        replica = next(iter(data["repositories"]["replicas"]))
        data["vector_stores"][0]["standby"] = {
            "engine": f"lancedb://{tmp_path / 'standby'}",
            "region": replica["region"],
        }

    plan = build(edit=edit)
    assert main(["standby", "sync", "kb", "--plan", str(plan), "--json"]) == 0
    capsys.readouterr()
    out = run(plan, "region-outage", capsys)
    assert out["exit_code"] == 0, out["reasons"]
    m = out["metrics"]
    assert m["standbys_ready"] == 1
    assert m["promotion_rto_s"] > 0
    assert m["restore_s"] > 0
    step = next(s for s in out["steps"] if s["name"].startswith("restore every"))
    (promo,) = step["data"]["standby_promotions"]
    assert promo["component"] == "kb"
    assert promo["ok"] is True
    assert promo["records"] == 43  # the standby synced after the later writes: 40 + 3
    validate_journal(Path(out["journal_path"]))
