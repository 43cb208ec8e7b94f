"""Project-wide checks: layering, lint and types are part of the suite."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_layers_are_respected() -> None:
    """A lower layer never imports a higher one (import-linter contract in pyproject)."""
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_ruff_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(900)
def test_mypy_strict_is_clean() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def _lint_imports_with(
    tmp_path: Path, offenders: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """lint-imports over a copy of the package with ``offenders`` added (never inside src/)."""
    tree = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "drkit", tree / "drkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    for rel, text in offenders.items():
        path = tree / "drkit" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_layer_probe_copy_is_kept_unchanged(tmp_path: Path) -> None:
    """The copy the probes below start from keeps the contract: they fail for their offender."""
    result = _lint_imports_with(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "offenders",
    [
        # a lower layer importing a higher one
        {"plan/_layer_probe.py": "import drkit.cli.main  # noqa: F401\n"},
        # siblings are independent (`|`): connectors may not import drkit's state...
        {"connectors/_layer_probe.py": "import drkit.state.store  # noqa: F401\n"},
        # ...and an optional layer, once it exists, is held to the contract too
        {
            "cost/__init__.py": '"""cost layer."""\n',
            "cost/_layer_probe.py": "import drkit.gateway.config  # noqa: F401\n",
        },
        {
            "agent/__init__.py": '"""agent layer."""\n',
            "agent/_layer_probe.py": "import drkit.cli.main  # noqa: F401\n",
        },
    ],
    ids=[
        "plan-imports-cli",
        "connectors-import-state",
        "cost-imports-gateway",
        "agent-imports-cli",
    ],
)
def test_layer_violation_is_caught(tmp_path: Path, offenders: dict[str, str]) -> None:
    """The contract really bites: each probe breaks it, in a copy of the tree outside src/."""
    result = _lint_imports_with(tmp_path, offenders)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout, result.stdout + result.stderr


#: the gateway extra's packages (pyproject's [project.optional-dependencies] gateway)
GATEWAY_EXTRA = ("aiohttp", "starlette", "uvicorn", "orjson", "redis", "prometheus_client")
#: modules that are the gateway extra's by nature: the gateway itself, the upstream
#: client, the simulator's server side and the rehearsal that runs them in-process (the
#: Provider interface and its wrappers, the client's classification and headers are not)
NEEDS_GATEWAY_EXTRA = (
    "drkit.gateway",
    "drkit.connectors.llm.client",
    "drkit.connectors.llm.upstream_stream",  # the client's open answer (aiohttp)
    "drkit.connectors.llm.simulator",
    "drkit.connectors.llm.simulator_app",
    "drkit.connectors.llm.wire",
    "drkit.drills.rehearsal",
    "drkit.web",  # the status page's ASGI app (starlette, from the status extra)
)

_BARE_IMPORT_PROBE = """
import importlib, json, pkgutil, sys

BLOCKED = set(sys.argv[1].split(","))
NEEDS = tuple(sys.argv[2].split(","))


class Absent:  # the gateway extra is not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Absent())
import drkit

failed = {}
for info in pkgutil.walk_packages(drkit.__path__, "drkit."):
    name = info.name
    if name == "drkit.__main__" or any(name == n or name.startswith(n + ".") for n in NEEDS):
        continue
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps(failed))
"""


def test_layers_below_the_gateway_import_without_the_gateway_extra() -> None:
    """Connectors, repository, replication, drills and the workspace work without
    ``drkit[gateway]``: only the gateway's own modules need aiohttp/starlette/uvicorn."""
    result = _run(
        sys.executable,
        "-c",
        _BARE_IMPORT_PROBE,
        ",".join(GATEWAY_EXTRA),
        ",".join(NEEDS_GATEWAY_EXTRA),
    )
    assert result.returncode == 0, result.stderr
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert failed == {}


def test_architecture_page_draws_the_enforced_contract() -> None:
    """docs/architecture.md's picture and the import-linter contract list the same layers."""
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in contract["contracts"] if c["type"] == "layers"]
    enforced = [
        [name.strip().removeprefix("drkit.") for name in layer.split("|")] for layer in layers
    ]
    enforced = [[n.replace("(drkit.", "(") for n in layer] for layer in enforced]
    page = (ROOT / "docs" / "architecture.md").read_text()
    picture = page.split("```\n", 2)[1]
    drawn = [
        [name.strip() for name in line.split("   ")[0].split("|")]
        for line in picture.splitlines()
        if line.strip()
    ]
    assert drawn == enforced


def test_pinned_tooling_is_what_runs() -> None:
    """ruff, mypy and import-linter are pinned exactly, and the suite runs those versions."""
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["test"]
    pins = dict(req.split("==") for req in test_extra if "==" in req)
    assert set(pins) == {"ruff", "mypy", "import-linter"}
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name


# --- size: no module over ~500 lines, no function over ~80, without a reason ----------------

SRC = ROOT / "src" / "drkit"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80  # from the ``def`` line to the last line of the body
#: the mark that gives a reason: ``def f(...):  # long: <why>`` on the def line, or for
#: a module a line ``# long: <why>`` among its first 40
LONG_MARK = "# long:"

#: Over the limits in files that other work is changing right now; each entry says why it
#: is allowed for the time being. An entry that is no longer over the limit fails the
#: test: remove it (the limits then hold for that code too).
LONG_FUNCTIONS: dict[str, str] = {}
LONG_MODULES: dict[str, str] = {}


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Every function of ``tree`` with its qualified name (``Class.method``, ``outer.inner``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from _functions(node, name + ".")
        else:
            yield from _functions(node, prefix)


def _too_long(root: Path = SRC) -> tuple[dict[str, int], dict[str, int]]:
    """Modules and functions under ``root`` over the limits without a ``# long:`` reason."""
    modules: dict[str, int] = {}
    functions: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES and not any(
            line.startswith(LONG_MARK) for line in lines[:40]
        ):
            modules[rel] = len(lines)
        for name, node in _functions(ast.parse(text)):
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and LONG_MARK not in lines[node.lineno - 1]:
                functions[f"{rel}::{name}"] = length
    return modules, functions


def test_no_module_or_function_is_too_long_without_a_reason() -> None:
    """STYLE: small modules (split at ~500 lines) and functions (~80); a longer one says
    why (``# long: <why>``) or is listed above with a reason."""
    modules, functions = _too_long()
    assert sorted(set(modules) - set(LONG_MODULES)) == [], (
        f"modules over {MAX_MODULE_LINES} lines: {modules}; split them along their seams, "
        f"or give a reason (a `{LONG_MARK} <why>` line near the top)"
    )
    assert sorted(set(functions) - set(LONG_FUNCTIONS)) == [], (
        f"functions over {MAX_FUNCTION_LINES} lines: {functions}; shorten them, or give a "
        f"reason (`{LONG_MARK} <why>` on the def line)"
    )
    stale = sorted((set(LONG_MODULES) - set(modules)) | (set(LONG_FUNCTIONS) - set(functions)))
    assert stale == [], f"no longer too long: remove them from the allowlists: {stale}"


def test_the_length_check_sees_long_code_and_reasons(tmp_path: Path) -> None:
    """The check itself: a long function is found (also a method, also nested) and a
    ``# long:`` reason on its def line lets it be; so for a long module."""
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "funcs.py").write_text(
        f"def plain():\n{body}\n"
        f"def excused():  {LONG_MARK} a table, one line per case\n{body}\n"
        f"class C:\n    def method(self):\n{body.replace('    ', '        ')}\n"
        f"def outer():\n    def inner():\n{body.replace('    ', '        ')}\n"
        "def short():\n    return 1\n"
    )
    filler = "x = 1\n" * (MAX_MODULE_LINES + 1)
    (tmp_path / "big.py").write_text(filler)
    (tmp_path / "big_excused.py").write_text(f'"""doc."""\n{LONG_MARK} one table\n{filler}')
    modules, functions = _too_long(tmp_path)
    assert sorted(functions) == [
        "funcs.py::C.method",
        "funcs.py::outer",
        "funcs.py::outer.inner",
        "funcs.py::plain",
    ]
    assert functions["funcs.py::plain"] == MAX_FUNCTION_LINES + 1
    assert modules == {"big.py": MAX_MODULE_LINES + 1}
