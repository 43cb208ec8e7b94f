"""``drkit agent run|status`` and ``drkit rpo`` on real local repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.agent.conftest import write_plan

from drkit.cli.main import main


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("env")
def test_once_runs_the_whole_cadence_then_nothing_is_due(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # minute-scale cadences: on a loaded machine the first pass may take longer than the
    # conftest's 2 s schedule, and the second pass must find nothing due
    plan = write_plan(
        tmp_path,
        tiers={"critical": {"rto": "1h", "rpo": "10m"}, "standard": {"rto": "1h", "rpo": "1h"}},
        testing={"restore_test_every": "4m"},
    )
    text = plan.read_text()
    plan.write_text(
        text.replace("schedule: 2s", "schedule: 2m").replace("copy_every: 3s", "copy_every: 3m")
    )
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["rpo", "--plan", str(plan), "--json"]) == 1  # no snapshot yet: exceeded
    rows = _json(capsys)
    assert isinstance(rows, list)
    assert all(r["exceeded"] and r["measured_s"] is None for r in rows)

    assert main(["agent", "run", "--once", "--plan", str(plan), "--json"]) == 0
    report = _json(capsys)
    assert isinstance(report, dict)
    ran = sorted(r["job"] for r in report["runs"])
    assert ran == [
        "backup:golden",
        "backup:train",
        "copy:replica",
        "restore-test:golden",
        "restore-test:train",
        "retention",
        "state-backup",
    ]
    assert report["failed"] == 0

    # every region holds the replicated component; the newest snapshot is verified
    assert main(["rpo", "--plan", str(plan), "--json"]) == 0
    rows = _json(capsys)
    assert isinstance(rows, list)
    by = {(r["component"], r["repository"]): r for r in rows}
    assert set(by) == {("train", "primary"), ("train", "replica"), ("golden", "primary")}
    for r in rows:
        assert r["measured_s"] is not None
        assert r["measured_s"] < 300
        assert r["verified_s"] is not None
        assert not r["exceeded"]
    assert by[("train", "primary")]["computed_s"] == 300.0  # 2m schedule + 3m copy
    assert by[("train", "primary")]["target_s"] == 600.0

    # right after, nothing is due: the second pass runs nothing and says so
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 0
    assert "nothing was due" in capsys.readouterr().out

    assert main(["agent", "status", "--plan", str(plan), "--json"]) == 0
    doc = _json(capsys)
    assert isinstance(doc, dict)
    assert doc["schema_version"] == 1
    # the --once agents released the lease as they stopped: nobody leads now
    assert doc["leader"] is None
    assert doc["lease"]["expires_in_s"] <= 0
    assert doc["lease"]["token"] >= 1
    status = doc["jobs"]
    train = next(s for s in status if s["job"] == "backup:train")
    assert train["last"]["status"] == "ok"
    assert train["last"]["bytes"] > 0  # what the backup stored (the first one: all of it)
    assert train["next_due"] == pytest.approx(train["last"]["started"] + 120, abs=1e-6)
    assert main(["agent", "status", "--plan", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "backup:train" in out
    # the --once agents released the lease as they stopped: nobody leads now
    assert "leader: none now (the last, " in out

    # an agent holding the lease: status names it in both outputs
    from drkit.agent.leader import LEASE
    from drkit.state.store import StateStore

    state = StateStore(tmp_path / "state" / "state.db")
    held = state.acquire_lease(LEASE, "host-b:42:abcd", 30.0)
    state.close()
    assert held is not None
    assert main(["agent", "status", "--plan", str(plan), "--json"]) == 0
    doc = _json(capsys)
    assert isinstance(doc, dict)
    assert doc["leader"] == "host-b:42:abcd"
    assert doc["lease"]["token"] == held.token
    assert doc["lease"]["expires_in_s"] > 0
    assert main(["agent", "status", "--plan", str(plan)]) == 0
    assert f"leader: host-b:42:abcd (token {held.token}" in capsys.readouterr().out


@pytest.mark.usefixtures("env")
def test_a_permanent_failure_is_reported_and_fails_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path)
    data = yaml.safe_load(plan.read_text())
    data["datasets"][0]["path"] = "./no-such-dir"
    plan.write_text(yaml.safe_dump(data))
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["agent", "run", "--once", "--plan", str(plan), "--json"]) == 1
    report = _json(capsys)
    assert isinstance(report, dict)
    failed = [r for r in report["runs"] if r["status"] == "failed"]
    assert [r["job"] for r in failed] == ["backup:train"]
    assert failed[0]["attempts"] == 1  # not transient: not retried
    assert "no-such-dir does not exist" in failed[0]["error"]
    # what waits on it did not run, and says why
    assert "restore-test:train" in report["skipped"]
    assert main(["agent", "status", "--plan", str(plan), "--json"]) == 0
    doc = _json(capsys)
    assert isinstance(doc, dict)
    status = {s["job"]: s for s in doc["jobs"]}
    assert status["backup:train"]["last"]["status"] == "failed"
    assert status["backup:train"]["last_success"] is None


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": "61 * * * *"}, "cron minute"),
        ({"schedule": "500ms"}, "below the agent's minimum"),
    ],
)
def test_bad_schedule_exits_2_and_starts_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    plan = write_plan(tmp_path)
    data = yaml.safe_load(plan.read_text())
    data["datasets"][0].update(change)
    plan.write_text(yaml.safe_dump(data))
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "drkit.yaml" in err  # names the file
    assert not (tmp_path / "state" / "state.db").exists()  # nothing started
    assert not (tmp_path / "primary").exists()


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-runtime", "soon"], "--max-runtime 'soon'"),
        (["--listen", "nowhere"], "expected HOST:PORT"),
        (["--jitter", "-"], "--jitter"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    plan = write_plan(tmp_path)
    assert main(["agent", "run", "--plan", str(plan), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state" / "state.db").exists()


@pytest.mark.usefixtures("env")
def test_a_plan_that_schedules_nothing_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path, testing={})
    data = yaml.safe_load(plan.read_text())
    for section in ("datasets", "eval_sets"):
        for comp in data[section]:
            for field in ("schedule", "retention", "replicate_to"):
                comp.pop(field, None)
    plan.write_text(yaml.safe_dump(data))
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    assert "schedules nothing" in capsys.readouterr().err


@pytest.mark.usefixtures("env")
def test_no_primary_repository_is_refused_before_any_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path)
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "no repository at file://" in err
    assert "Try: create it first: drkit repo init" in err
    assert not (tmp_path / "state" / "state.db").exists()


@pytest.mark.usefixtures("env")
def test_an_unreachable_state_url_exits_2_before_any_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.servers import free_port

    url = f"postgresql://drkit:s3cret-pw@127.0.0.1:{free_port()}/state"
    plan = write_plan(tmp_path, state={"url": url})
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["agent", "run", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the state database postgresql://drkit:***@127.0.0.1:" in err
    assert "s3cret-pw" not in err
    assert "Try: check state.url / DRKIT_STATE" in err
    assert list((tmp_path / "primary" / "snapshots").glob("*")) == []


@pytest.mark.usefixtures("env")
def test_once_refuses_while_another_agent_leads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drkit.agent.leader import LEASE
    from drkit.state.store import StateStore

    plan = write_plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    state = StateStore(tmp_path / "state" / "state.db")
    assert state.acquire_lease(LEASE, "elsewhere:1:abc", ttl=60) is not None
    capsys.readouterr()
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    assert "another agent runs the cadence: elsewhere:1:abc leads (token 1)" in (
        capsys.readouterr().err
    )
    assert state.events(kind="agent.run") == []
    state.close()
