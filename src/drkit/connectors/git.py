"""A git repository through the real ``git`` binary: its refs, bundles, clones.

drkit backs up an eval harness (or any code kept in git) the way git itself moves
history around: ``git bundle create`` of every ref, incremental against the refs a
previous bundle already held (``^<commit>`` for each), ``git bundle verify`` before a
bundle is trusted, ``git clone``/``git fetch`` from the bundles to restore. Nothing here
parses git's object format.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from drkit.errors import DrkitError, InputError

#: the environment of every git call: no prompt, no user or system config that could
#: rewrite refs or run hooks, a stable locale for the messages we read
_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


class GitError(DrkitError):
    """A git command failed (exit 1: the repository or the bundle has a problem)."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_NOSYSTEM="1")
    return env


def git_binary() -> str:
    found = shutil.which("git")
    if found is None:
        raise InputError(
            "the git binary is not installed (a harness component is a git repository)",
            hint="install git, e.g. apt-get install git",
        )
    return found


def run_git(args: Sequence[str], cwd: Path | None = None, *, check: bool = True) -> str:
    """Run ``git ARGS`` (in ``cwd``); its stdout. ``GitError`` with git's own last line
    of stderr when it fails and ``check``."""
    proc = subprocess.run(
        [git_binary(), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {why}")
    return proc.stdout


def is_repository(path: Path) -> bool:
    """``path`` is the top of a git work tree or a bare repository (not a directory
    inside one: that would back up the whole enclosing repository)."""
    if not path.is_dir():
        return False
    here = path.resolve()
    bare = _try_git(["rev-parse", "--is-bare-repository", "--absolute-git-dir"], path)
    if bare is None:
        return False
    lines = bare.splitlines()
    if lines[:1] == ["true"]:
        return len(lines) > 1 and Path(lines[1]).resolve() == here
    top = _try_git(["rev-parse", "--show-toplevel"], path)
    return top is not None and Path(top.strip()).resolve() == here


def _try_git(args: Sequence[str], cwd: Path) -> str | None:
    proc = subprocess.run(
        [git_binary(), *args], cwd=cwd, env=_env(), capture_output=True, text=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def require_repository(path: Path, origin: str | None = None) -> None:
    """``InputError`` (exit 2, one line) when ``path`` is not a git repository."""
    if not is_repository(path):
        where = f" ({origin})" if origin else ""
        what = (
            "does not exist"
            if not path.exists()
            else "is not a git repository (or not the top directory of one)"
        )
        raise InputError(
            f"{path} {what}{where}",
            hint="a harness component's path is a git repository (git init; git commit)",
        )


def refs(path: Path) -> dict[str, str]:
    """Every ref of the repository (``refs/...`` -> the object it names), HEAD excluded."""
    out = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], path)
    pairs = (line.split(" ", 1) for line in out.splitlines() if line.strip())
    return {name: sha for sha, name in pairs}


def head(path: Path) -> tuple[str | None, str | None]:
    """(the ref HEAD points at or None when detached, the commit HEAD names or None in an
    empty repository)."""
    sym = run_git(["symbolic-ref", "-q", "HEAD"], path, check=False).strip() or None
    commit = run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], path, check=False).strip()
    return sym, commit or None


def is_dirty(path: Path) -> bool:
    """The work tree has uncommitted changes (untracked files included)."""
    if run_git(["rev-parse", "--is-bare-repository"], path).strip() == "true":
        return False
    return bool(run_git(["status", "--porcelain"], path).strip())


def existing(path: Path, shas: Sequence[str]) -> list[str]:
    """The objects of ``shas`` the repository still has (one ``git cat-file
    --batch-check`` for all of them)."""
    if not shas:
        return []
    proc = subprocess.run(
        [git_binary(), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=path,
        env=_env(),
        input="\n".join(shas) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"git cat-file failed: exit {proc.returncode}")
    found = {ln.split()[0] for ln in proc.stdout.splitlines() if not ln.endswith(" missing")}
    return [sha for sha in shas if sha in found]


def create_bundle(path: Path, out: Path, exclude: Sequence[str] = ()) -> bool:
    """``git bundle create OUT --all ^EXCLUDE...``; False (and no file) when the bundle
    would be empty: every ref's history is already in ``exclude``."""
    have = existing(path, list(exclude))
    args = ["bundle", "create", "-q", str(out), "--all", *(f"^{sha}" for sha in have)]
    proc = subprocess.run(
        [git_binary(), *args], cwd=path, env=_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        if "empty bundle" in proc.stderr:
            return False
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise GitError(f"git bundle create failed: {lines[-1] if lines else proc.returncode}")
    return True


def bundle_heads(bundle: Path) -> dict[str, str]:
    """The refs a bundle carries (``git bundle list-heads``), HEAD excluded."""
    out = run_git(["bundle", "list-heads", str(bundle)])
    pairs = (line.split(" ", 1) for line in out.splitlines() if " " in line)
    return {name: sha for sha, name in pairs if name.startswith("refs/")}


def verify_bundle(bundle: Path, repo: Path) -> None:
    """``git bundle verify`` in ``repo`` (which must hold the bundle's prerequisites)."""
    run_git(["bundle", "verify", "-q", str(bundle)], repo)


def clone_bundle(bundle: Path, target: Path) -> None:
    """``git clone`` (no checkout) from a full bundle into the new directory ``target``."""
    run_git(["clone", "-q", "--no-checkout", str(bundle), str(target)])


def fetch_bundle(repo: Path, bundle: Path) -> None:
    """Fetch every ref of ``bundle`` into ``repo`` as the same ref (forced)."""
    run_git(["fetch", "-q", "--update-head-ok", str(bundle), "+refs/*:refs/*"], repo)


def set_refs(
    repo: Path, wanted: dict[str, str], head_ref: str | None, head_commit: str | None = None
) -> None:
    """Make ``repo``'s refs exactly ``wanted`` (drop the clone's remote), point HEAD at
    ``head_ref`` (else detach it at ``head_commit``) and check it out."""
    run_git(["remote", "remove", "origin"], repo, check=False)
    lines = [f"update {name} {sha}" for name, sha in sorted(wanted.items())]
    lines += [f"delete {name}" for name in sorted(set(refs(repo)) - set(wanted))]
    proc = subprocess.run(
        [git_binary(), "update-ref", "--stdin"],
        cwd=repo,
        env=_env(),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"git update-ref failed: {proc.stderr.strip().splitlines()[-1:]}")
    if head_ref and head_ref in wanted:
        run_git(["symbolic-ref", "HEAD", head_ref], repo)
        run_git(["reset", "-q", "--hard"], repo)
    elif head_commit:
        run_git(["checkout", "-q", "--detach", head_commit], repo)


def fsck(repo: Path) -> list[str]:
    """``git fsck --full``: its complaints (empty: the repository is sound)."""
    proc = subprocess.run(
        [git_binary(), "fsck", "--full", "--no-progress", "--no-dangling"],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        return []
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()] or [
        f"git fsck exited {proc.returncode}"
    ]
