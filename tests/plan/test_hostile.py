"""Hostile and broken plans are refused with bounded work: a plan size limit (a device
or a huge file is not read whole), linear-time URL masking in `plan show`, and malformed
YAML errors that name where the unclosed bracket or quote began."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from drkit.cli.main import main
from drkit.cli.plan_cmd import mask_userinfo
from drkit.errors import PlanError
from drkit.plan.loader import MAX_PLAN_BYTES, load_plan, parse_plan
from drkit.plan.starter import starter_plan

#: the masking regex `plan show` used before, quadratic in long unbroken strings
_OLD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)[^/@\s]*@")


@pytest.mark.parametrize(
    "text",
    [
        "postgres://user:secret@db/app",
        "two redis://:pw@h:6379 and s3://k:s@bucket/x",
        "1x://u:p@h",
        "://u:p@h",
        "a://u@h",
        "a://u:p",
        "https://api.example.com/v1?x=http://k:s@h",
        "é-x+y://u:p:q@h",
        "",
    ],
)
def test_masking_matches_the_old_regex(text: str) -> None:
    assert mask_userinfo(text) == _OLD.sub(r"\g<head>**********@", text)


def test_masking_random_strings_like_the_old_regex() -> None:
    import random

    rng = random.Random(7)
    for _ in range(5000):
        text = "".join(rng.choice("ab1:/@ .+-") for _ in range(rng.randrange(24)))
        assert mask_userinfo(text) == _OLD.sub(r"\g<head>**********@", text), text


def test_plan_show_with_a_huge_description(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 900 KB in one unbroken word: the old regex took tens of minutes (quadratic)
    data = yaml.safe_load(starter_plan(tmp_path))
    data["description"] = "a" * 900_000
    plan = tmp_path / "drkit.yaml"
    plan.write_text(yaml.safe_dump(data, width=10**7))
    assert main(["plan", "show", "--plan", str(plan), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["description"] == "a" * 900_000


def test_dev_zero_is_refused_not_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "check", "--plan", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert f"larger than {MAX_PLAN_BYTES // 1024} KiB" in err
    assert "Try: " in err


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "drkit.yaml"
    big.write_text("# " + "x" * MAX_PLAN_BYTES + "\n")
    with pytest.raises(PlanError, match="larger than"):
        load_plan(big)


@pytest.mark.parametrize(
    ("opening", "start_line"),
    [("tags: [a, b,", 3), ('description: "never closed', 3), ("x: {a: 1,", 3)],
)
def test_malformed_yaml_names_where_the_bracket_or_quote_began(
    opening: str, start_line: int
) -> None:
    text = "version: 1\nname: x\n" + opening + "\n" + "\n".join(f"k{i}: v" for i in range(30))
    with pytest.raises(PlanError) as info:
        parse_plan(text, file="drkit.yaml", base_dir=Path("/tmp"), env={})
    assert f"started at line {start_line}" in str(info.value)
