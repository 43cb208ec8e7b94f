"""Child process for the crash tests: runs one repository operation until killed.

python -m tests.repository.crash_child backup REPO SRC_DIR...
python -m tests.repository.crash_child prune REPO
python -m tests.repository.crash_child copy REPO DST
python -m tests.repository.crash_child init REPO
python -m tests.repository.crash_child copy-init REPO DST
python -m tests.repository.crash_child repair REPO REPLICA
python -m tests.repository.crash_child keys REPO
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.repository.stores import open_test_store

from drkit.errors import RepositoryExists
from drkit.repository import KdfParams, Repository, backup_path
from drkit.repository.maintenance import forget, prune
from drkit.repository.replica import copy, repair
from drkit.repository.retention import Policy

PASSWORD = "crash test"


def init_or_open(path: Path) -> Repository:
    """``repo init`` / ``copy --init``: create, or finish an interrupted init."""
    store = open_test_store(path)
    if store.exists("config"):
        return Repository.open(store, PASSWORD)
    try:
        return Repository.init(store, PASSWORD)  # the real KDF: a longer window
    except RepositoryExists:
        return Repository.open(store, PASSWORD)


def main(argv: list[str]) -> int:
    op, repo_dir, *rest = argv
    if op == "init":
        print("ready", flush=True)
        init_or_open(Path(repo_dir)).close()
        print("done", flush=True)
        return 0
    repo = Repository.open(open_test_store(Path(repo_dir)), PASSWORD)
    print("ready", flush=True)
    if op == "backup":
        for src in rest:
            backup_path(repo, src, component="c", tags=(Path(src).name,))
    elif op == "prune":
        forget(repo, Policy(keep_last=2))
        prune(repo)
    elif op in ("copy", "copy-init"):
        path = Path(rest[0])
        if op == "copy-init":
            dst = init_or_open(path)
        else:
            dst = Repository.open(open_test_store(path), PASSWORD)
        copy(repo, dst)
        dst.close()
    elif op == "repair":
        replica = Repository.open(open_test_store(Path(rest[0])), PASSWORD)
        repair(repo, replica)
        replica.close()
    elif op == "keys":
        for _ in range(20):
            kid = repo.add_key("another", kdf=KdfParams.fast())
            repo.remove_key(kid)
    repo.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
