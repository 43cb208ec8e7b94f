"""drkit's repository side by side with restic on the same generated data.

Usage::

    .venv/bin/python benchmarks/repository.py                 # 1 GiB, 3 runs
    .venv/bin/python benchmarks/repository.py --size-mib 256 --runs 1
    .venv/bin/python benchmarks/repository.py --edits --size-mib 1024   # bytes only

``--edits`` measures what each kind of edit costs the repository, in bytes (independent
of load; no restic): one large float32 file is backed up, then three backups follow, each
after one edit of 1 % of the file: scattered 4 KiB blocks rewritten in place (an mmap'd
index or an embedding matrix edited where it lies), one contiguous run rewritten, and
rows appended. It prints the stored bytes per edited byte, the repository's size and
metadata (index objects, tree blobs, pack headers, blob count) after each step, and a
backup and restore times (one run: noisy).

Data: float32 embedding-like arrays (unit-normalised rows of 768 dims) plus a few
thousand small JSON/text files. Steps, each timed for both tools: full backup, backup
after a 1 % in-place edit (contiguous rows rewritten in every array file), restore, check
with full data read. Prints MB/s, the ratio to restic and repository sizes; figures are
medians over the runs. Both write to the same disk with their defaults (drkit's
LocalStore fsyncs every object; restic fsyncs too). drkit runs in-process through its
library; restic through its binary (its start-up is a few ms).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from drkit.connectors.objectstore.local import LocalStore
from drkit.repository import Repository, backup_path, restore
from drkit.repository.maintenance import check

PASSWORD = "benchmark password"
DIM = 768


def generate(root: Path, size: int, small_files: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    arrays = root / "embeddings"
    arrays.mkdir(parents=True)
    n_files = max(1, min(8, size // (32 << 20)))
    per_file = size // n_files
    rows = per_file // (DIM * 4)
    out = []
    for i in range(n_files):
        a = rng.standard_normal((rows, DIM), dtype=np.float32)
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        p = arrays / f"shard-{i:03d}.f32"
        p.write_bytes(a.tobytes())
        out.append(p)
    meta = root / "docs"
    for i in range(small_files):
        d = meta / f"{i % 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        words = rng.integers(0, 5000, size=int(rng.integers(20, 600)))
        text = " ".join(f"w{w}" for w in words)
        (d / f"doc-{i:05d}.json").write_text(json.dumps({"id": i, "text": text, "label": i % 7}))
    return out


def edit_one_percent(files: list[Path], seed: int) -> int:
    """Rewrite 1 % of every array file in place (a contiguous block of rows)."""
    rng = np.random.default_rng(seed)
    total = 0
    for p in files:
        size = p.stat().st_size
        rows = size // (DIM * 4)
        n = max(1, rows // 100)
        start = int(rng.integers(0, rows - n))
        a = rng.standard_normal((n, DIM), dtype=np.float32)
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        with open(p, "r+b") as fh:
            fh.seek(start * DIM * 4)
            fh.write(a.tobytes())
        total += a.nbytes
    return total


def edit_scattered(path: Path, seed: int, fraction: float = 0.01, block: int = 4096) -> int:
    """Rewrite ``fraction`` of a file as random distinct ``block``-aligned blocks."""
    rng = np.random.default_rng(seed)
    blocks = path.stat().st_size // block
    picked = np.sort(rng.choice(blocks, size=max(1, int(blocks * fraction)), replace=False))
    with open(path, "r+b") as fh:
        for b in picked:
            v = rng.standard_normal(block // 4, dtype=np.float32) / np.float32(DIM**0.5)
            fh.seek(int(b) * block)
            fh.write(v.tobytes())
    return len(picked) * block


def edit_contiguous(path: Path, seed: int) -> int:
    return edit_one_percent([path], seed)


def edit_append(path: Path, seed: int) -> int:
    rng = np.random.default_rng(seed)
    rows = path.stat().st_size // 100 // (DIM * 4)
    a = rng.standard_normal((rows, DIM), dtype=np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    with open(path, "ab") as fh:
        fh.write(a.tobytes())
    return a.nbytes


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


CPU: dict[str, float] = {}


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def restic(repo: Path, *args: str, step: str = "") -> float:
    env = {**os.environ, "RESTIC_PASSWORD": PASSWORD, "RESTIC_REPOSITORY": str(repo)}
    c = _cpu(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(
        ["restic", "--no-cache", "-q", *args], env=env, check=True, stdout=subprocess.DEVNULL
    )
    if step:
        CPU[f"restic_{step}_cpu"] = _cpu(resource.RUSAGE_CHILDREN) - c
    return time.perf_counter() - t


class timed:
    """Wall time and this process's CPU time of a drkit step."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.wall = 0.0

    def __enter__(self) -> timed:
        self.c = _cpu(resource.RUSAGE_SELF)
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t
        CPU[f"drkit_{self.step}_cpu"] = _cpu(resource.RUSAGE_SELF) - self.c


def disk_ceiling(work: Path, *, fsync: bool = True) -> float:
    """MB/s of 16 MiB writes into new files from 4 threads, fsync'd (what a backup into a
    local repository is bound by) or not (what a restore, which does not fsync, is bound
    by: on this VM, copying into never-touched page-cache pages is itself slow)."""
    from concurrent.futures import ThreadPoolExecutor

    d = work / "disk-probe"
    d.mkdir()
    buf = os.urandom(16 << 20)

    def write(i: int) -> None:
        fd = os.open(d / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, buf)
        if fsync:
            os.fsync(fd)
        os.close(fd)

    os.sync()
    t = time.perf_counter()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(write, range(32)))
    dt = time.perf_counter() - t
    shutil.rmtree(d)
    os.sync()
    return 32 * len(buf) / 1e6 / dt


def one_run(data: Path, arrays: list[Path], work: Path, run: int) -> dict[str, float]:
    total = du(data)
    r: dict[str, float] = {"data_bytes": total}
    # restic
    rrepo = work / f"restic-{run}"
    restic(rrepo, "init")
    os.sync()
    r["restic_backup_s"] = restic(rrepo, "backup", str(data), step="backup")
    r["restic_size"] = du(rrepo)
    # drkit
    drepo = work / f"drkit-{run}"
    repo = Repository.init(LocalStore(drepo), PASSWORD)
    os.sync()
    with timed("backup") as tm:
        backup_path(repo, data, component="bench")
    r["drkit_backup_s"] = tm.wall
    r["drkit_size"] = du(drepo)
    # 1 % in-place edit
    edited = edit_one_percent(arrays, seed=run + 100)
    r["edited_bytes"] = edited
    os.sync()
    r["restic_edit_s"] = restic(rrepo, "backup", str(data), step="edit")
    r["restic_edit_stored"] = du(rrepo) - r["restic_size"]
    before = du(drepo)
    os.sync()
    with timed("edit") as tm:
        backup_path(repo, data, component="bench")
    r["drkit_edit_s"] = tm.wall
    r["drkit_edit_stored"] = du(drepo) - before
    # restore
    # both outputs are deleted only after both restores: on ext4 without a journal (this
    # VM's disk), inodes freed in the last 30 s are skipped one by one when allocating,
    # so deleting one tool's 3,000 restored files makes the next tool's file creation
    # quadratic
    # The tools take turns restoring first: each restore fills 1 GiB of new page cache,
    # and on this VM whoever comes second gets the never-touched pages, which cost ~10 us
    # each to fill (a fixed order biased the ratio by up to 2x).
    rout, dout = work / f"restic-out-{run}", work / f"drkit-out-{run}"

    def restic_restore() -> None:
        os.sync()
        r["restic_restore_s"] = restic(
            rrepo, "restore", "latest", "--target", str(rout), step="restore"
        )

    def drkit_restore() -> None:
        os.sync()
        with timed("restore") as tm:
            restore(repo, "latest", dout)
        r["drkit_restore_s"] = tm.wall

    order = [restic_restore, drkit_restore] if run % 2 == 0 else [drkit_restore, restic_restore]
    for step in order:
        step()
    r["drkit_restored_first"] = float(run % 2)
    shutil.rmtree(rout)
    shutil.rmtree(dout)
    # check --read-data
    os.sync()
    r["restic_check_s"] = restic(rrepo, "check", "--read-data", step="check")
    os.sync()
    with timed("check") as tm:
        report = check(repo, read_data=True)
    r["drkit_check_s"] = tm.wall
    assert report.ok, report.errors
    repo.close()
    r.update(CPU)
    shutil.rmtree(rrepo)
    shutil.rmtree(drepo)
    return r


def metadata(repo: Repository, root: Path) -> dict[str, float]:
    """The repository's size and what of it is metadata (bytes)."""
    from drkit.repository.codec import BlobType

    packs = repo.list_packs()
    in_blobs = {p: sum(e.length for e in es) for p, es in repo.index.packs().items()}
    entries = [e for es in repo.index.packs().values() for e in es]
    return {
        "size": du(root),
        "index": du(root / "index"),
        "snapshots": du(root / "snapshots"),
        "trees": sum(e.length for e in entries if e.type == BlobType.TREE),
        "pack_headers": sum(size - in_blobs.get(p, 0) for p, size in packs.items()),
        "data_blobs": sum(1 for e in entries if e.type == BlobType.DATA),
    }


def edits_run(work: Path, size: int) -> dict[str, object]:
    """Back up one large file, then one backup after each kind of 1 % edit (bytes)."""
    import hashlib

    data = work / "data"
    data.mkdir()
    big = data / "matrix.f32"
    rng = np.random.default_rng(7)
    with open(big, "wb") as fh:  # written in 64 MiB pieces: bounded memory at any size
        left = size // (DIM * 4)
        while left:
            n = min(left, (64 << 20) // (DIM * 4))
            a = rng.standard_normal((n, DIM), dtype=np.float32)
            a /= np.linalg.norm(a, axis=1, keepdims=True)
            fh.write(a.tobytes())
            left -= n
    root = work / "drkit"
    repo = Repository.init(LocalStore(root), PASSWORD)
    out: dict[str, object] = {"file_bytes": big.stat().st_size}
    os.sync()
    t = time.perf_counter()
    first = backup_path(repo, data, component="edits")
    took = time.perf_counter() - t
    steps: list[dict[str, object]] = [
        {"step": "full backup", **metadata(repo, root), "backup_s": took}
    ]
    for step, edit in [
        ("scattered 4 KiB", edit_scattered),
        ("contiguous", edit_contiguous),
        ("append", edit_append),
    ]:
        before = metadata(repo, root)
        edited = edit(big, 11)
        os.sync()
        t = time.perf_counter()
        backup_path(repo, data, component="edits")
        took = time.perf_counter() - t
        after = metadata(repo, root)
        stored = float(after["size"]) - float(before["size"])
        ratio = stored / edited
        steps.append({"step": step, "edited": edited, "stored": stored, "ratio": ratio, **after})
        steps[-1]["backup_s"] = took
    out["steps"] = steps
    want = hashlib.blake2b(big.read_bytes()).hexdigest()
    for name, snap in [("first", first.id), ("last", "latest")]:
        dest = work / f"out-{name}"
        os.sync()
        t = time.perf_counter()
        restore(repo, snap, dest)
        dt = time.perf_counter() - t
        out[f"restore_{name}_mb_s"] = (dest / "matrix.f32").stat().st_size / 1e6 / dt
        if name == "last":
            got = hashlib.blake2b((dest / "matrix.f32").read_bytes()).hexdigest()
            assert got == want, "the restored file differs from the edited one"
        shutil.rmtree(dest)
    report = check(repo, read_data=True)
    assert report.ok, report.errors
    repo.close()
    return out


def print_edits(res: dict[str, object]) -> None:
    steps = res["steps"]
    assert isinstance(steps, list)
    print(f"one file of {int(res['file_bytes']) / 2**20:.0f} MiB (float32), 1 % per edit")
    print(
        f"{'step':<18}{'edited MiB':>11}{'stored MiB':>11}{'stored/edited':>14}"
        f"{'repo MiB':>10}{'index KiB':>10}{'trees KiB':>10}{'headers KiB':>12}{'blobs':>8}"
        f"{'backup s':>10}"
    )
    for s in steps:
        edited = f"{s['edited'] / 2**20:.2f}" if "edited" in s else "-"
        stored = f"{s['stored'] / 2**20:.2f}" if "stored" in s else "-"
        ratio = f"{s['ratio']:.2f}x" if "ratio" in s else "-"
        print(
            f"{s['step']:<18}{edited:>11}{stored:>11}{ratio:>14}{s['size'] / 2**20:>10.1f}"
            f"{s['index'] / 1024:>10.1f}{s['trees'] / 1024:>10.1f}"
            f"{s['pack_headers'] / 1024:>12.1f}{s['data_blobs']:>8}{s['backup_s']:>10.1f}"
        )
    print(
        f"restore (one run, noisy): first snapshot {res['restore_first_mb_s']:.0f} MB/s, "
        f"last {res['restore_last_mb_s']:.0f} MB/s; load average {os.getloadavg()[0]:.1f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024, help="array data size (MiB)")
    ap.add_argument("--small-files", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temp dir in /tmp")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--edits", action="store_true", help="bytes stored per kind of edit only")
    args = ap.parse_args()
    if args.edits:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)  # a new directory is fine
        work = Path(tempfile.mkdtemp(prefix="drkit-edits-", dir=args.workdir))
        try:
            res = edits_run(work, args.size_mib << 20)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if args.json:
            print(json.dumps(res, indent=2))
        else:
            print_edits(res)
        return 0
    if shutil.which("restic") is None:
        print("restic is not installed (apt-get install restic)", file=sys.stderr)
        return 2
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)  # a new directory is fine
    work = Path(tempfile.mkdtemp(prefix="drkit-bench-", dir=args.workdir))
    try:
        data = work / "data"
        ceiling = disk_ceiling(work)
        cache_ceiling = disk_ceiling(work, fsync=False)
        runs = []
        for run in range(args.runs):
            if data.exists():
                shutil.rmtree(data)
            arrays = generate(data, args.size_mib << 20, args.small_files, seed=run)
            runs.append(one_run(data, arrays, work, run))
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mb = med["data_bytes"] / 1e6
    rows = []
    for step, key in [
        ("full backup", "backup"),
        ("backup after 1% edit", "edit"),
        ("restore", "restore"),
        ("check --read-data", "check"),
    ]:
        d, rs = med[f"drkit_{key}_s"], med[f"restic_{key}_s"]
        cpu = med[f"restic_{key}_cpu"] / max(med[f"drkit_{key}_cpu"], 1e-9)
        rows.append(
            (step, mb / d, mb / rs, rs / d, med[f"drkit_{key}_cpu"], med[f"restic_{key}_cpu"], cpu)
        )
    if args.json:
        ceilings = {"disk_fsync_mb_s": ceiling, "page_cache_mb_s": cache_ceiling}
        print(json.dumps({"median": med, "runs": runs, **ceilings}, indent=2))
        return 0
    print(
        f"data: {med['data_bytes'] / 2**20:.0f} MiB ({args.small_files} small files), "
        f"medians of {args.runs} run(s), {os.cpu_count()} cores"
    )
    print(
        f"{'step':<24}{'drkit MB/s':>12}{'restic MB/s':>13}{'drkit/restic':>14}"
        f"{'CPU-s drkit':>13}{'CPU-s restic':>14}{'CPU restic/drkit':>18}"
    )
    for step, d, rs, ratio, dcpu, rcpu, cpu in rows:
        print(
            f"{step:<24}{d:>12.0f}{rs:>13.0f}{ratio:>13.2f}x{dcpu:>13.2f}{rcpu:>14.2f}{cpu:>17.2f}x"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other processes share the cores)")
    print(
        f"disk: fsync'd 16 MiB writes at {ceiling:.0f} MB/s; drkit's full backup wrote "
        f"{med['drkit_size'] / 1e6 / med['drkit_backup_s']:.0f} MB/s of repository data"
    )
    print(
        f"page cache: unsynced 16 MiB writes into new files at {cache_ceiling:.0f} MB/s; "
        f"drkit's restore wrote {mb / med['drkit_restore_s']:.0f} MB/s"
    )
    print(
        f"repository size: drkit {med['drkit_size'] / 2**20:.1f} MiB, "
        f"restic {med['restic_size'] / 2**20:.1f} MiB "
        f"(ratio {med['drkit_size'] / med['restic_size']:.3f})"
    )
    print(
        f"1% edit: edited {med['edited_bytes'] / 2**20:.1f} MiB; stored: drkit "
        f"{med['drkit_edit_stored'] / 2**20:.1f} MiB "
        f"({med['drkit_edit_stored'] / med['edited_bytes']:.2f}x edited), restic "
        f"{med['restic_edit_stored'] / 2**20:.1f} MiB "
        f"({med['restic_edit_stored'] / med['edited_bytes']:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
