"""Child process for the crash tests: runs one repository operation until killed.

python -m tests.repository.crash_child backup REPO SRC_DIR...
python -m tests.repository.crash_child prune REPO
python -m tests.repository.crash_child copy REPO DST
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.repository.stores import open_test_store

from drkit.repository import Repository, backup_path
from drkit.repository.maintenance import forget, prune
from drkit.repository.replica import copy
from drkit.repository.retention import Policy

PASSWORD = "crash test"


def main(argv: list[str]) -> int:
    op, repo_dir, *rest = argv
    repo = Repository.open(open_test_store(Path(repo_dir)), PASSWORD)
    print("ready", flush=True)
    if op == "backup":
        for src in rest:
            backup_path(repo, src, component="c", tags=(Path(src).name,))
    elif op == "prune":
        forget(repo, Policy(keep_last=2))
        prune(repo)
    elif op == "copy":
        dst = Repository.open(open_test_store(Path(rest[0])), PASSWORD)
        copy(repo, dst)
        dst.close()
    repo.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
