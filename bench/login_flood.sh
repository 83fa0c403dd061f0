#!/usr/bin/env bash
# A lead's writes during a flood of bad logins (issue 17, item 3), on SQLite by default.
#
# A fresh database, `cohorts serve` on a free loopback port; the admin creates a program
# and a program lead, the lead signs in (before the flood), then for WRK_DURATION, at once:
#   wrk -t2 -c32 --latency -s bench/bad_login.lua    POST /api/v1/auth/login (wrong passwords)
#   wrk -t1 -c2  --latency -s bench/lead_writes.lua  POST /api/v1/programs/{id}/patients
# and prints the lead's p50/p99 and failures, and what the flood got (status counts).
#
# Binary: $COHORTS_BIN, or `cargo build --release` (CARGO_TARGET_DIR honoured).
# Knobs: BACKENDS [sqlite], FLOOD_CONNECTIONS [32], LEAD_CONNECTIONS [2], WRK_DURATION [15s].
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap bench_cleanup EXIT

BACKENDS="${BACKENDS:-sqlite}"
FLOOD_CONNECTIONS="${FLOOD_CONNECTIONS:-32}"
LEAD_CONNECTIONS="${LEAD_CONNECTIONS:-2}"
WRK_DURATION="${WRK_DURATION:-15s}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"
resolve_bin
printf 'load average at start: %s, %s cores\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
for backend in $BACKENDS; do
    log "== $backend"
    start_server "$backend"
    login
    PROGRAM_ID="$(create_program Bench)"
    lead_email="lead-$RANDOM@example.org"
    body="$(jq -nc --arg e "$lead_email" --argjson p "$PROGRAM_ID" \
        '{email: $e, name: "Bench Lead", role: "program_lead", password: "a long enough password", program_ids: [$p]}')"
    curl -fsS -o /dev/null -XPOST "$BASE_URL/api/v1/users" -H 'content-type: application/json' \
        -H "Authorization: Bearer $TOKEN" -d "$body" || die "creating the lead failed"
    body="$(jq -nc --arg e "$lead_email" '{email: $e, password: "a long enough password"}')"
    LEAD_TOKEN="$(curl -fsS -XPOST "$BASE_URL/api/v1/auth/login" -H 'content-type: application/json' \
        -d "$body" | jq -r .token)"
    export PROGRAM_ID LEAD_TOKEN
    wrk -t2 -c"$FLOOD_CONNECTIONS" -d"$WRK_DURATION" --latency -s "$HERE/bad_login.lua" \
        "$BASE_URL" >"$BENCH_TMP/flood.txt" &
    flood=$!
    sleep 1
    wrk -t1 -c"$LEAD_CONNECTIONS" -d"$WRK_DURATION" --latency -s "$HERE/lead_writes.lua" \
        "$BASE_URL" >"$BENCH_TMP/lead.txt"
    wait "$flood"
    printf '\n%s: flood of bad logins (%s connections):\n' "$backend" "$FLOOD_CONNECTIONS"
    grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|99)%' "$BENCH_TMP/flood.txt" || true
    printf '%s: lead writes (%s connections, during the flood):\n' "$backend" "$LEAD_CONNECTIONS"
    grep -E 'lead writes:|Requests/sec|Non-2xx|Socket errors' "$BENCH_TMP/lead.txt" || true
    grep -c 'database is locked' "$SERVER_DIR/stderr" | sed 's/^/"database is locked" in the log: /' || true
    stop_server
done
