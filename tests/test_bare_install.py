"""`pip install drkit` with no extras: every command works, or exits 2 with one line that
names the extra to install — never a ModuleNotFoundError traceback.

The CLI runs in a subprocess whose imports cannot see what only the extras install: every
top-level module of a distribution that an extra of pyproject.toml pulls in (transitively)
and the core dependencies do not. That is the import view of a bare install, derived
from the installed metadata, so a new extra dependency is blocked without editing this
test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """Distributions (normalised names) that ``requirements`` install, transitively;
    requirements gated on an extra or on another platform are not followed."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        head, _, marker = req.partition(";")
        if "extra ==" in marker or 'sys_platform == "win32"' in marker:
            continue
        m = _NAME.match(head.strip())
        if not m:
            continue
        name = _norm(m.group(0))
        if name in seen or name == "drkit":
            continue
        seen.add(name)
        try:
            todo += metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
    return seen


@cache
def blocked_modules() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _closure(list(project["dependencies"]))
    extras: list[str] = []
    for name, reqs in project["optional-dependencies"].items():
        if name != "test":
            extras += [r for r in reqs if not r.startswith("drkit[")]
    only_extras = _closure(extras) - core
    out = set()
    for module, dists in metadata.packages_distributions().items():
        names = {_norm(d) for d in dists}
        if module.isidentifier() and names & only_extras and not names & core:
            out.add(module)
    return sorted(out)


BLOCKER = """
import sys, importlib.abc
BLOCKED = set({blocked!r})
class _Bare(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Bare())
from drkit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_bare(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRKIT_")}
    env.update(
        HOME=str(cwd / "home"),
        DRKIT_PASSWORD="pw",
        DRKIT_KDF="fast",
        PYTHONPATH=str(ROOT / "src"),
    )
    code = BLOCKER.format(blocked=blocked_modules())
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_blocker_hides_what_only_extras_install() -> None:
    blocked = set(blocked_modules())
    assert {"starlette", "uvicorn", "lancedb", "qdrant_client"} <= blocked
    assert not {"pydantic", "yaml", "typer", "rich", "pyarrow", "httpx", "click"} & blocked


#: (command, extra it needs or None when the core install runs it)
COMMANDS: list[tuple[list[str], str | None]] = [
    (["--help"], None),
    (["version"], None),
    (["plan", "check"], None),
    (["plan", "show"], None),
    (["plan", "schema"], None),
    (["repo", "init"], None),
    (["drill", "list"], None),
    (["drill", "history"], None),
    (["backup", "train"], None),
    (["backup", "golden-qa"], None),
    (["snapshots"], None),
    (["verify", "train"], None),
    (["check", "--read-data"], None),
    (["forget", "--keep-last", "5"], None),
    (["drill", "run", "data-corruption", "--subject", "train"], None),
    (["drill", "run", "provider-outage"], "gateway"),
    (["drill", "run", "region-outage"], "gateway"),
    (["gameday"], "gateway"),
    (["gateway", "serve", "--port", "0"], "gateway"),
    (["simulate", "provider", "--dialect", "openai", "--port", "0"], "gateway"),
    (["demo", "--dir", "demo-out"], "lancedb"),
    (["copy", "--to", "s3://bucket/x?endpoint=http://127.0.0.1:1"], "s3"),
]


@pytest.fixture(scope="module")
def bare_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bare")
    assert run_bare(["init", "--local", "."], root).returncode == 0
    return root


@pytest.mark.parametrize(("args", "extra"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS])
def test_command_on_a_bare_install(bare_project: Path, args: list[str], extra: str | None) -> None:
    proc = run_bare(args, bare_project)
    assert "Traceback" not in proc.stderr, proc.stderr
    if extra is None:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("Try: "), proc.stderr
        assert lines[-1].endswith(f"pip install 'drkit[{extra}]'"), proc.stderr
        assert len(lines) == 2, proc.stderr  # one error line, one hint


def test_vector_component_backup_names_the_engine_extra(tmp_path: Path) -> None:
    assert run_bare(["init", "."], tmp_path).returncode == 0  # kb on qdrant+local
    assert run_bare(["repo", "init"], tmp_path).returncode == 0
    (tmp_path / "qdrant").mkdir()  # an (empty) Qdrant local store, so the engine opens
    (tmp_path / "qdrant" / "meta.json").write_text('{"collections": {}, "aliases": {}}')
    proc = run_bare(["backup", "kb"], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "pip install 'drkit[qdrant]'" in proc.stderr
    snaps = run_bare(["snapshots", "--json"], tmp_path)
    assert json.loads(snaps.stdout) == [] or "kb" not in snaps.stdout  # nothing half-written


def _bare_venv(cache_dir: Path) -> Path:
    """A real venv with drkit's core dependencies only (from the package index, as
    `pip install drkit` would), drkit itself from this checkout on PYTHONPATH;
    cached under pytest's cache directory, keyed by the core dependency list."""
    import hashlib
    import venv

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = sorted(project["dependencies"])
    key = hashlib.sha256("\n".join([sys.version, *deps]).encode()).hexdigest()[:12]
    root = cache_dir / f"venv-{key}"
    python = root / "bin" / "python"
    if (root / ".complete").exists():
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *deps],
        check=True,
        timeout=600,
    )
    (root / ".complete").write_text(key)
    return python


def test_a_real_bare_venv_shows_no_traceback(pytestconfig: pytest.Config, tmp_path: Path) -> None:
    assert pytestconfig.cache is not None
    python = _bare_venv(Path(pytestconfig.cache.mkdir("drkit-bare-install")))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRKIT_", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT / "src"), DRKIT_PASSWORD="pw")
    env["DRKIT_KDF"] = "fast"

    def drkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-m", "drkit", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    probe = subprocess.run(
        [str(python), "-c", "import starlette"], capture_output=True, env=env, timeout=60
    )
    assert probe.returncode != 0  # really bare: no extra is importable
    for args, code in (
        (["init", "--local"], 0),
        (["plan", "check"], 0),
        (["repo", "init"], 0),
        (["backup"], 0),
        (["verify", "train"], 0),
        (["drill", "list"], 0),
        (["drill", "history"], 0),
        (["gateway", "serve", "--port", "0"], 2),
        (["simulate", "provider", "--dialect", "openai", "--port", "0"], 2),
        (["gameday"], 2),
        (["demo", "--dir", "demo-out"], 2),
    ):
        proc = drkit(*args)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode == code, (args, proc.stderr)
        if code == 2:
            assert "pip install 'drkit[" in proc.stderr, (args, proc.stderr)
