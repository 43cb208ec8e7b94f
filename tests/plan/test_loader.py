"""Loading plans: the valid starter, every kind of invalid input, ${ENV}, secrets, lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from drkit.errors import PlanError
from drkit.plan.loader import load_plan
from drkit.plan.models import Plan
from drkit.types import Secret

Loader = Callable[..., Plan]


def line_of(text: str, needle: str) -> int:
    """1-based line of the last non-comment line containing ``needle``."""
    hits = [
        i + 1
        for i, line in enumerate(text.splitlines())
        if needle in line and not line.lstrip().startswith("#")
    ]
    return hits[-1]


def mutate(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_starter_loads_with_defaults_and_normalised_durations(
    starter_text: str, from_text: Loader
) -> None:
    plan = from_text(starter_text)
    assert plan.name == "my-assistant"
    assert plan.tiers["critical"].rto == 300.0
    assert plan.tiers["standard"].rpo == 86400.0
    assert plan.is_critical("critical")
    assert not plan.is_critical("standard")
    route = plan.route("assistant")
    assert [t.provider for t in route.targets] == ["anthropic", "openai"]
    assert route.deadlines.first_token == 10.0
    assert plan.serving.gateway.port == 8787  # a default
    assert plan.repository("us-replica").copy_every == 900.0
    assert plan.models[0].trained_on[0].version == "v1"
    dumped = plan.model_dump(mode="json")
    assert dumped["tiers"]["standard"]["rto"] == "1d"
    assert dumped["vector_stores"][0]["schedule"] == "30m"


def test_show_output_loads_back_to_the_same_plan(starter_text: str, from_text: Loader) -> None:
    plan = from_text(starter_text)
    again = from_text(yaml.safe_dump(plan.model_dump(mode="json"), sort_keys=False))
    assert again.model_dump() == plan.model_dump()


def test_every_element_has_its_line(starter_text: str, from_text: Loader) -> None:
    plan = from_text(starter_text)
    loc = plan.locate("serving", "routes", 0, "targets")
    assert loc.line == line_of(starter_text, "targets:")
    assert loc.field == "serving.routes[0].targets"
    assert loc.file == "drkit.yaml"
    assert plan.locate("serving", "routes", 0, "targets", 1).line == line_of(
        starter_text, "- name: openai-us"
    )
    assert plan.locate("vector_stores", 0, "schedule").line == line_of(
        starter_text, "    schedule: 30m"
    )
    # a default value has no line of its own: its parent's line is used
    assert plan.locate("serving", "gateway", "port").line == line_of(starter_text, "serving:")


def test_dates_stay_strings_and_numbers_become_versions(
    from_text: Loader, starter_text: str
) -> None:
    text = mutate(starter_text, 'version: "v1"', "version: 2026-11-01")
    text = mutate(text, 'version: "1"', "version: 3")
    plan = from_text(text)
    assert plan.models[0].trained_on[0].version == "2026-11-01"
    assert plan.models[0].version == "3"


def test_env_expansion_with_defaults_and_escapes(from_text: Loader, starter_text: str) -> None:
    text = mutate(starter_text, "model: gpt-4.1", 'model: "${MODEL:-gpt-4o}"')
    text = mutate(text, "name: my-assistant", "name: ${NAME}")
    text = mutate(text, "title: My assistant status", "title: costs $$5 ${CUR}")
    plan = from_text(text, env={"NAME": "prod", "CUR": "USD"})
    assert plan.name == "prod"
    assert plan.route("assistant").targets[1].model == "gpt-4o"
    assert plan.status_page.title == "costs $5 USD"


def test_secrets_are_masked_everywhere(from_text: Loader, starter_text: str) -> None:
    text = mutate(starter_text, "    password_env: DRKIT_PASSWORD\n", '    password: "${PW}"\n')
    text = mutate(text, "api_key_env: OPENAI_API_KEY", 'api_key: "${OPENAI_KEY}"')
    text = mutate(
        text, "auth: {client_keys_env: DRKIT_GATEWAY_KEYS}", 'auth: {client_keys: ["${CK}"]}'
    )
    env = {"PW": "hunter2-pw", "OPENAI_KEY": "sk-very-secret", "CK": "client-secret"}
    plan = from_text(text, env=env)
    primary = plan.repositories.primary
    assert isinstance(primary.password, Secret)
    assert primary.password.reveal() == "hunter2-pw"
    assert plan.route("assistant").targets[1].api_key == Secret("sk-very-secret")
    rendered = [
        repr(plan),
        str(plan),
        plan.model_dump_json(),
        json.dumps(plan.model_dump(mode="json")),
        f"{primary.password}",
        str(plan.model_dump()),
    ]
    for out in rendered:
        for secret in env.values():
            assert secret not in out


def test_secret_values_are_not_echoed_in_errors(from_text: Loader, starter_text: str) -> None:
    text = mutate(starter_text, "    password_env: DRKIT_PASSWORD\n", "    password: 123456789\n")
    with pytest.raises(PlanError) as info:
        from_text(text)
    assert info.value.field == "repositories.primary.password"
    assert "123456789" not in str(info.value)


# (old, new, needle of the expected line, expected field, words expected in the message)
INVALID: list[tuple[str, str, str, str, str, str]] = [
    # the parser notices the unclosed list on the next line
    ("malformed", "collections: []", "collections: [docs", "schedule: 30m", "", "malformed YAML"),
    (
        "unknown key",
        "    schedule: 30m",
        "    schedual: 30m",
        "schedual:",
        "vector_stores[0].schedual",
        "unknown key 'schedual' (did you mean 'schedule'?)",
    ),
    (
        "unknown section",
        "testing:",
        "testin:",
        "testin:",
        "testin",
        "unknown key 'testin'",
    ),
    (
        "wrong type",
        "critical: {rto: 5m, rpo: 1h, multi_region: true}",
        "critical: {rto: 5m, rpo: 1h, multi_region: maybe}",
        "multi_region: maybe",
        "tiers.critical.multi_region",
        "valid boolean",
    ),
    (
        "wrong container",
        "replicate_to: [us-replica]\n",
        "replicate_to: us-replica\n",
        "replicate_to: us-replica",
        "vector_stores[0].replicate_to",
        "valid list",
    ),
    (
        "missing env var",
        "model: gpt-4.1",
        "model: ${MODEL_NAME}",
        "${MODEL_NAME}",
        "serving.routes[0].targets[1].model",
        "environment variable MODEL_NAME is not set",
    ),
    (
        "bad duration",
        "    schedule: 30m",
        "    schedule: 5 mins",
        "schedule: 5 mins",
        "vector_stores[0].schedule",
        "invalid duration '5 mins'",
    ),
    (
        "bad cron",
        "    schedule: 30m",
        '    schedule: "0 0 30 2 *"',
        '    schedule: "0',
        "vector_stores[0].schedule",
        "never fires",
    ),
    (
        "cron out of range",
        "    schedule: 30m",
        '    schedule: "61 * * * *"',
        '    schedule: "61',
        "vector_stores[0].schedule",
        "outside 0-59",
    ),
    (
        "bad dialect",
        "provider: anthropic ",
        "provider: gemini ",
        "provider: gemini",
        "serving.routes[0].targets[0].provider",
        "'openai' or 'anthropic'",
    ),
    (
        "duplicate component name",
        "{name: golden-qa,",
        "{name: kb,",
        "{name: kb,",
        "eval_sets[0].name",
        "duplicate route/component name 'kb'",
    ),
    (
        "duplicate target name",
        "        - name: openai-us",
        "        - name: anthropic-eu",
        "- name: anthropic-eu",
        "serving.routes[0].targets[1].name",
        "duplicate target name 'anthropic-eu'",
    ),
    (
        "duplicate key",
        "name: my-assistant\n",
        "name: my-assistant\nname: other\n",
        "name: other",
        "name",
        "duplicate key 'name'",
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
        "undefined replica",
        "    replicate_to: [us-replica]",
        "    replicate_to: [eu-replica]",
        "replicate_to: [eu-replica]",
        "vector_stores[0].replicate_to[0]",
        "replica repository 'eu-replica' is not defined (did you mean 'us-replica'?)",
    ),
    (
        "primary as replica",
        "    replicate_to: [us-replica]",
        "    replicate_to: [primary]",
        "replicate_to: [primary]",
        "vector_stores[0].replicate_to[0]",
        "is the primary repository",
    ),
    (
        "undefined dataset",
        "{dataset: train,",
        "{dataset: trian,",
        "{dataset: trian,",
        "models[0].trained_on[0].dataset",
        "dataset 'trian' is not defined",
    ),
    (
        "undefined status target",
        "covers: [kb]",
        "covers: [kbb]",
        "covers: [kbb]",
        "status_page.components[1].covers[0]",
        "route or component 'kbb' is not defined",
    ),
    (
        "missing key",
        "    region: eu-west\n",
        "\n",
        "  primary:",
        "repositories.primary.region",
        "missing required key 'region'",
    ),
    (
        "bad url",
        "base_url: https://api.openai.com/v1",
        "base_url: api.openai.com",
        "base_url: api.openai.com",
        "serving.routes[0].targets[1].base_url",
        "is not an http(s) URL",
    ),
    (
        "bad name",
        "name: my-assistant",
        "name: my assistant!",
        "name: my assistant!",
        "name",
        "should match pattern",
    ),
    (
        "unsupported tag",
        "name: my-assistant",
        "name: !!python/object:os.system x",
        "name: !!python",
        "",
        "malformed YAML",
    ),
    (
        "retention without rules",
        "retention: {keep_daily: 30, keep_monthly: 12}",
        "retention: {}",
        "retention: {}",
        "datasets[0].retention",
        "at least one keep_* rule",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "words"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_plans_raise_located_plan_errors(
    starter_text: str, from_text: Loader, old: str, new: str, needle: str, field: str, words: str
) -> None:
    text = mutate(starter_text, old, new)
    with pytest.raises(PlanError) as info:
        from_text(text)
    err = info.value
    assert words in err.reason, err
    assert err.file == "drkit.yaml"
    assert err.line == line_of(text, needle), err
    if field:
        assert err.field == field
        assert str(err).startswith(f"drkit.yaml:{err.line}: {field}: ")
    assert err.hint
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the plan is empty"),
        ("# only a comment\n", "the plan is empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text", "must be a mapping"),
        ("a: &x [*x]\n", "refers to itself"),
        ("a: b\n---\nc: d\n", "malformed YAML"),
        ("{[1]: 2}", "plain name"),
        ("a: !!set {x}\n", "unsupported YAML tag"),
        ("a: !!binary aGVsbG8=\n", "unsupported YAML value"),
        ("a: ${X\n", "unterminated ${"),
        ("a: ${1X}\n", "bad variable reference"),
    ],
)
def test_structural_errors(from_text: Loader, text: str, words: str) -> None:
    with pytest.raises(PlanError) as info:
        from_text(text)
    assert words in str(info.value)


def test_alias_bombs_are_refused(from_text: Loader) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(PlanError) as info:
        from_text("\n".join(lines) + "\n")
    assert "more than" in str(info.value)


def test_merge_keys_work(from_text: Loader, starter_text: str) -> None:
    text = mutate(
        starter_text,
        "  critical: {rto: 5m, rpo: 1h, multi_region: true}",
        "  critical: &crit {rto: 5m, rpo: 1h, multi_region: true}\n  gold: {<<: *crit, rto: 1m}",
    )
    plan = from_text(text)
    assert plan.tiers["gold"].rto == 60.0
    assert plan.tiers["gold"].multi_region is True


def test_load_plan_file_errors(tmp_path: Path, starter_text: str) -> None:
    with pytest.raises(PlanError, match="no such plan file") as info:
        load_plan(tmp_path / "missing.yaml")
    assert "drkit init" in (info.value.hint or "")
    with pytest.raises(PlanError, match="is a directory"):
        load_plan(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(PlanError, match="not UTF-8"):
        load_plan(binary)
    good = tmp_path / "drkit.yaml"
    good.write_text(starter_text)
    plan = load_plan(good, env={})
    assert plan.base_dir == tmp_path.resolve()
    assert plan.resolve_path("./data/train") == tmp_path.resolve() / "data" / "train"
    assert plan.locate("name").file == str(good)


def test_first_of_several_errors_is_reported_with_a_count(
    from_text: Loader, starter_text: str
) -> None:
    text = mutate(starter_text, "  standard: {rto: 24h, rpo: 24h}", "  standard: {rto: x, rpo: y}")
    with pytest.raises(PlanError) as info:
        from_text(text)
    assert "(and 1 more problem)" in str(info.value)


def test_a_scheduled_eval_names_a_route_of_the_plan(
    starter_data: dict[str, object], from_data: Callable[..., Plan]
) -> None:
    testing = starter_data["testing"]
    assert isinstance(testing, dict)
    testing["scheduled_evals"][0]["route"] = "asistant"
    with pytest.raises(PlanError) as info:
        from_data(starter_data)
    assert "route 'asistant' is not defined (did you mean 'assistant'?)" in str(info.value)
    assert info.value.field == "testing.scheduled_evals[0].route"
    testing["scheduled_evals"][0].update(route="assistant", every="0s")
    with pytest.raises(PlanError, match="every"):
        from_data(starter_data)
