"""Build hook: compile native/records.c and the vendored BLAKE3 C sources into the
shared library drkit loads with ctypes (native/README.md). A failed compile is a
warning, not a failed install: drkit then hashes records with blake3-py."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).parent
LIB = "src/drkit/replication/vectors/_native/libdrkit_records.so"
B3 = ROOT / "native" / "blake3"
NO_SIMD = ["-DBLAKE3_NO_SSE2", "-DBLAKE3_NO_SSE41", "-DBLAKE3_NO_AVX2", "-DBLAKE3_NO_AVX512"]


def sources() -> tuple[list[Path], list[str]]:
    """The C (and assembly) files and defines for this machine."""
    common = [ROOT / "native" / "records.c", B3 / "blake3.c", B3 / "blake3_dispatch.c"]
    common.append(B3 / "blake3_portable.c")
    machine = platform.machine().lower()
    if sys.platform != "win32" and machine in ("x86_64", "amd64"):
        simd = ("sse2", "sse41", "avx2", "avx512")
        return [*common, *(B3 / f"blake3_{s}_x86-64_unix.S" for s in simd)], []
    if machine in ("aarch64", "arm64"):
        return [*common, B3 / "blake3_neon.c"], ["-DBLAKE3_USE_NEON=1"]
    return common, NO_SIMD


def compile_library(out: Path) -> str | None:
    """Build ``out``; the reason if it could not be."""
    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    files, defines = sources()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".so.tmp")
    cmd = [cc, "-O3", "-shared", "-fPIC", *defines, "-o", str(tmp), *map(str, files)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"{' '.join(cmd)}: {done.stderr.strip()[-500:]}"
    tmp.replace(out)
    return None


class NativeHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        out = ROOT / LIB
        why = compile_library(out)
        if why is not None:
            self.app.display_warning(
                f"drkit: the batched record hasher was not built, blake3-py is used: {why}"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(out)] = LIB.removeprefix("src/")
