"""Load ``drkit.yaml`` into a :class:`~drkit.plan.models.Plan`, or fail with a located error.

The YAML is composed into nodes (not loaded straight to Python) so that every mapping
key and list item keeps its line number; validation errors and lint findings point at
``file:line`` and a dotted field (``serving.routes[0].targets``). ``${VAR}`` and
``${VAR:-default}`` are expanded in string values at load (``$$`` is a literal ``$``).

Every failure is a :class:`drkit.errors.PlanError` — malformed YAML, duplicate keys,
unknown keys, wrong types, bad durations, missing variables, duplicate names and
references to undefined tiers, repositories, datasets or components.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from drkit.errors import PlanError
from drkit.plan.models import Plan
from drkit.plan.references import check_references
from drkit.plan.source import PathKey, SourceMap, field_name

#: Refuse documents whose aliases expand to more values than this (billion laughs).
MAX_VALUES = 100_000
_SECRET_WORDS = ("password", "api_key", "client_keys", "secret", "token")
_DOCS = "docs/plan.md"
#: plan section -> its heading's anchor in docs/plan.md (GitHub's slugs keep ``_``);
#: the top-level fields (name, version, state_dir, ...) are under "Top level"
DOC_ANCHORS: dict[str, str] = {
    "tiers": "tiers",
    "repositories": "repositories",
    "serving": "serving",
    "vector_stores": "vector_stores",
    "datasets": "datasets",
    "models": "models",
    "eval_sets": "eval_sets-and-eval_results",
    "eval_results": "eval_sets-and-eval_results",
    "harnesses": "harnesses",
    "mlflow_registries": "mlflow_registries",
    "testing": "testing",
    "providers": "providers",
    "status_page": "status_page",
    "cost": "cost",
}


def doc_anchor(section: str) -> str:
    """The docs/plan.md anchor that documents plan section ``section``."""
    return DOC_ANCHORS.get(section, "top-level")


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: ``2026-11-01`` stays the string it looks like."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_SCALAR_TYPES = (str, int, float, bool, type(None))
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


# --- ${ENV} expansion ------------------------------------------------------------------

_VAR_RE = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_VAR_BODY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


def expand_env(text: str, env: Mapping[str, str], *, where: dict[str, Any]) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` and ``$$`` in ``text``.

    ``where`` holds the ``file``/``line``/``field`` keyword arguments of the PlanError
    raised for an unset variable or a malformed reference.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$$":
            return "$"
        body = match.group(1)
        if body is None:
            raise PlanError(
                "unterminated ${ in value", hint="write ${VAR} or ${VAR:-default}", **where
            )
        parsed = _VAR_BODY_RE.match(body)
        if parsed is None:
            raise PlanError(
                f"bad variable reference ${{{body}}}",
                hint="write ${VAR} or ${VAR:-default}; $$ is a literal $",
                **where,
            )
        name, default = parsed.group(1), parsed.group(2)
        value = env.get(name)
        if value is None:
            if default is not None:
                return default
            raise PlanError(
                f"environment variable {name} is not set",
                hint=f"export {name}=... before running drkit, or write ${{{name}:-default}}",
                **where,
            )
        return value

    return _VAR_RE.sub(replace, text)


# --- YAML nodes -> Python values with line numbers -------------------------------------


class _Builder:
    def __init__(self, loader: _Loader, file: str, env: Mapping[str, str]) -> None:
        self.loader = loader
        self.file = file
        self.env = env
        self.lines: dict[PathKey, int] = {(): 1}
        self.count = 0
        self.active: set[int] = set()

    def fail(self, message: str, node: yaml.Node, path: PathKey, hint: str | None = None) -> None:
        raise PlanError(
            message,
            file=self.file,
            line=node.start_mark.line + 1,
            field=field_name(path) or None,
            hint=hint,
        )

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            self.fail(
                f"the plan expands to more than {MAX_VALUES} values",
                node,
                path,
                "do not nest YAML aliases; write the plan out",
            )
        if id(node) in self.active:
            self.fail("a YAML alias refers to itself", node, path, "remove the recursive alias")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.fail(f"unsupported YAML tag {node.tag}", node, path, "remove the tag")
                items = []
                for i, item in enumerate(node.value):
                    self.lines.setdefault((*path, i), item.start_mark.line + 1)
                    items.append(self.build(item, (*path, i)))
                return items
            return self._scalar(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self.fail(f"unsupported YAML tag {node.tag}", node, path, "remove the tag")
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail("a mapping key must be a plain name", key_node, path)
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value)
            if key in first_line:
                self.fail(
                    f"duplicate key {key!r} (first at line {first_line[key]})",
                    key_node,
                    (*path, key),
                    "remove one of them",
                )
            first_line[key] = key_node.start_mark.line + 1
        # `<<: *anchor` merge keys: merged pairs come first, the mapping's own keys win
        self.loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail("a mapping key must be a plain name", key_node, path)
            key = str(key_node.value)
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: yaml.Node, path: PathKey) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if not isinstance(value, _SCALAR_TYPES):
            self.fail(
                f"unsupported YAML value of type {type(value).__name__}",
                node,
                path,
                "use a string, number, boolean or null",
            )
        if isinstance(value, str):
            where = {
                "file": self.file,
                "line": node.start_mark.line + 1,
                "field": field_name(path) or None,
            }
            value = expand_env(value, self.env, where=where)
        return value


def _compose(text: str, file: str) -> tuple[_Loader, yaml.Node | None]:
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise PlanError(
            f"malformed YAML: character #x{exc.character:04x} is not allowed",
            file=file,
            line=text[: exc.position].count("\n") + 1,
            hint="remove control characters from the file",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        start = exc.context_mark
        if exc.context and start is not None and (mark is None or start.line != mark.line):
            # where the unclosed bracket, quote or block began, not only where it ended
            problem += f" ({exc.context} started at line {start.line + 1})"
        raise PlanError(
            f"malformed YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            hint="fix the YAML syntax (indentation, quotes, colons) at that line",
        ) from None
    except yaml.YAMLError as exc:
        raise PlanError(f"malformed YAML: {exc}", file=file, hint="fix the YAML syntax") from None
    return loader, node


def parse_yaml(text: str, *, file: str, env: Mapping[str, str]) -> tuple[Any, dict[PathKey, int]]:
    """YAML text -> (plain Python data with ``${ENV}`` expanded, line of every path)."""
    try:
        loader, node = _compose(text, file)
        if node is None:
            raise PlanError(
                "the plan is empty", file=file, line=1, hint="run `drkit init` for a starter plan"
            )
        builder = _Builder(loader, file, env)
        try:
            data = builder.build(node, ())
        except yaml.MarkedYAMLError as exc:  # bad tags, bad merge keys
            mark = exc.problem_mark or exc.context_mark
            raise PlanError(
                f"malformed YAML: {exc.problem or exc.context}",
                file=file,
                line=mark.line + 1 if mark else None,
                hint="use plain YAML: mappings, lists, strings, numbers, booleans",
            ) from None
        finally:
            loader.dispose()
    except RecursionError:
        raise PlanError(
            "the plan is nested too deeply", file=file, hint="flatten the YAML structure"
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. 10**5000-digit integers
        raise PlanError(f"unreadable value: {exc}", file=file, hint="fix the value") from None
    if not isinstance(data, dict):
        raise PlanError(
            f"the plan must be a mapping of sections, not a {type(data).__name__}",
            file=file,
            line=1,
            hint="start from `drkit init`; the top level has version:, name:, tiers:, ...",
        )
    return data, builder.lines


# --- validation errors -----------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """BaseModel classes reachable through Annotated/Optional/list/dict/union wrappers."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (list, dict, typing.Union, types.UnionType):
        found: list[type[BaseModel]] = []
        args = typing.get_args(annotation)
        for arg in args[-1:] if origin is dict else args:
            found.extend(_models_in(arg))
        return found
    return []


def _model_at(loc: PathKey) -> type[BaseModel] | None:
    """The model class whose fields live at ``loc`` (for "valid keys" hints)."""
    current: list[type[BaseModel]] = [Plan]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for model in current:
            info = model.model_fields.get(part)
            if info is not None:
                nxt.extend(_models_in(info.annotation))
        if not nxt:  # a dict key (a tier name) or a union label: stay
            continue
        current = nxt
    return current[0] if len(current) == 1 else None


def _describe(error: ErrorDetails, source: SourceMap) -> PlanError:
    loc: PathKey = tuple(error["loc"])
    known = source.known_prefix(loc)
    kind = error["type"]
    line = source.line_of(known)
    section = str(loc[0]) if loc else ""
    hint = f"see {_DOCS}" + (f"#{doc_anchor(section)}" if section else "")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        field = field_name((*known, key) if known[-1:] != (key,) else known)
        model = _model_at(known[:-1] if known[-1:] == (key,) else known)
        message = f"unknown key {key!r}"
        if model is not None:
            valid = list(model.model_fields)
            close = difflib.get_close_matches(key, valid, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
            hint = "valid keys here: " + ", ".join(valid)
        return PlanError(message, file=source.file, line=line, field=field, hint=hint)
    if kind == "missing":
        key = str(loc[-1])
        field = field_name((*known, key))
        return PlanError(
            f"missing required key {key!r}",
            file=source.file,
            line=line,
            field=field,
            hint=f"add `{key}: ...`; {hint}",
        )
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    secret = any(word in str(part) for part in loc for word in _SECRET_WORDS)
    value = error.get("input")
    if not secret and isinstance(value, str | int | float | bool) and kind != "value_error":
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        message += f" (got {shown})"
    return PlanError(message, file=source.file, line=line, field=field_name(known), hint=hint)


def _first_error(exc: ValidationError, source: SourceMap) -> PlanError:
    described = [_describe(e, source) for e in exc.errors(include_url=False)]
    # an unknown key usually explains the rest (a misspelt required key): report it first
    order = [e["type"] != "extra_forbidden" for e in exc.errors(include_url=False)]
    ranked = sorted(zip(order, described, strict=True), key=lambda p: (p[0], p[1].line or 0))
    described = [d for _, d in ranked]
    first = described[0]
    if len(described) > 1:
        more = len(described) - 1
        return PlanError(
            f"{first.reason} (and {more} more problem{'s' if more > 1 else ''})",
            file=first.file,
            line=first.line,
            field=first.field,
            hint=first.hint,
        )
    return first


# --- entry points ----------------------------------------------------------------------


def parse_plan(
    text: str,
    *,
    file: str = "<plan>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Plan:
    """Parse and validate plan text; ``env`` defaults to ``os.environ``."""
    environ = os.environ if env is None else env
    data, lines = parse_yaml(text, file=file, env=environ)
    source = SourceMap(file=file, lines=lines, base_dir=base_dir or Path.cwd())
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, source) from None
    plan._source = source
    check_references(plan)
    return plan


#: a plan is a few kilobytes; past this it is not a plan (``--plan /dev/zero``, a log)
MAX_PLAN_BYTES = 1024 * 1024


def load_plan(path: str | Path, *, env: Mapping[str, str] | None = None) -> Plan:
    """Load ``drkit.yaml`` from ``path``. Raises :class:`PlanError` and nothing else."""
    p = Path(path)
    file = str(path)
    try:
        with p.open("rb") as fh:  # bounded: a device or a huge file is refused, not read
            raw = fh.read(MAX_PLAN_BYTES + 1)
    except FileNotFoundError:
        raise PlanError(
            "no such plan file",
            file=file,
            hint="run `drkit init` to write a starter plan, or pass --plan PATH",
        ) from None
    except IsADirectoryError:
        raise PlanError(
            "is a directory, not a plan file", file=file, hint=f"pass --plan {p / 'drkit.yaml'}"
        ) from None
    except OSError as exc:
        raise PlanError(
            f"cannot read the plan: {exc.strerror or exc}",
            file=file,
            hint="check the path and its permissions",
        ) from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(
            f"the plan is larger than {MAX_PLAN_BYTES // 1024} KiB",
            file=file,
            hint="pass the plan file itself with --plan (a drkit.yaml is a few KiB)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"not UTF-8 text (byte {exc.start})", file=file, hint="save the plan as UTF-8"
        ) from None
    return parse_plan(text, file=file, base_dir=p.resolve().parent, env=env)
