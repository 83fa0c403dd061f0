#!/usr/bin/env bash
# Mail throughput: MESSAGES [5000] reminders planned and dispatched through the outbox by
# the worker to a local SMTP sink, against a raw lettre pooled send loop of comparable
# messages to the same sink in the same run (examples/mail_bench.rs, release build).
# Target: >= 500 messages/s through the outbox and >= 0.8x the raw loop.
#
# Knobs: BACKENDS [sqlite, plus postgres when PostgreSQL answers], RUNS [3], MESSAGES [5000].
# CARGO_TARGET_DIR is honoured.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap bench_cleanup EXIT

RUNS="${RUNS:-3}"
export MESSAGES="${MESSAGES:-5000}"
if [[ -z "${BACKENDS:-}" ]]; then
    BACKENDS="sqlite"
    if command -v psql >/dev/null && psql -q "$BENCH_PG_ADMIN_URL" -c "SELECT 1" >/dev/null 2>&1; then
        BACKENDS="sqlite postgres"
    fi
fi

target="${CARGO_TARGET_DIR:-$BENCH_ROOT/target}"
log "building examples/mail_bench in release (CARGO_TARGET_DIR=$target)…"
(cd "$BENCH_ROOT" && CARGO_TARGET_DIR="$target" cargo build --release --quiet --example mail_bench)
bin="$target/release/examples/mail_bench"

for backend in $BACKENDS; do
    for run in $(seq 1 "$RUNS"); do
        if [[ "$backend" == postgres ]]; then
            # Not in a subshell: new_database_url sets DATABASE_URL and records the
            # database for bench_cleanup.
            new_database_url postgres "$BENCH_TMP"
            export BENCH_DATABASE_URL="$DATABASE_URL"
        else
            unset BENCH_DATABASE_URL
        fi
        log "run $run/$RUNS on $backend"
        (cd "$BENCH_ROOT" && COHORTS_LOG=warn "$bin")
    done
done
