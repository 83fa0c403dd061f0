#!/usr/bin/env bash
# Time of the program attendance report (JSON and CSV) over 120,000 attendance records,
# on SQLite and PostgreSQL.
#
# For each backend: a fresh database; `cohorts seed-demo --large` (the demo program plus a
# benchmark program with 1,000 completed cohorts × 12 held sessions × 10 members, one
# record per member per session); an admin bench@example.org added with
# `cohorts user add … --password-stdin`; `cohorts serve` on a free loopback port; a
# login; then, after WARMUP untimed requests of each kind, RUNS timed requests each of
#   curl -w '%{time_total}' GET /api/v1/programs/{id}/attendance-report
#   curl -w '%{time_total}' GET /api/v1/programs/{id}/attendance-report?format=csv
# The JSON must list 1,000 cohorts and 10,000 members, the CSV 10,000 rows plus a header.
# Prints every time and the min/median.
#
# Binary: $COHORTS_BIN, or `cargo build --release` (CARGO_TARGET_DIR honoured, default target/).
# Knobs (defaults in brackets): BACKENDS [sqlite postgres], RUNS [7], WARMUP [2],
# REPORT_QUERY [empty]: extra query parameters, e.g. `from=2024-01-01&to=2024-12-31` (the
# member/cohort count checks then only warn).
# PostgreSQL: role cohorts/cohorts on 127.0.0.1:5432 allowed to create databases.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap bench_cleanup EXIT

BACKENDS="${BACKENDS:-sqlite postgres}"
RUNS="${RUNS:-7}"
WARMUP="${WARMUP:-2}"
REPORT_QUERY="${REPORT_QUERY:-}"
EXPECT_COHORTS=1000
EXPECT_MEMBERS=10000
BENCH_EMAIL="bench@example.org"
BENCH_PASSWORD="bench-password-123"

resolve_bin

# cohorts_env CMD… → runs the binary against the current SERVER_DIR / DATABASE_URL.
cohorts_env() {
    COHORTS_DATABASE_URL="$DATABASE_URL" \
        COHORTS_DATA_DIR="$SERVER_DIR/data" \
        COHORTS_LOG="${COHORTS_LOG:-warn}" \
        COHORTS_SECRET_KEY="$BENCH_SECRET_KEY" \
        "$COHORTS_BIN" "$@"
}

# time_get LABEL URL → prints the seconds; the body is kept in $BENCH_TMP/LABEL.out.
time_get() {
    local label="$1" url="$2" status seconds
    read -r status seconds < <(curl -sS -o "$BENCH_TMP/$label.out" -w '%{http_code} %{time_total}\n' \
        -H "Authorization: Bearer $TOKEN" "$url")
    [[ "$status" == 200 ]] || {
        head -c 2000 "$BENCH_TMP/$label.out" >&2
        die "$label: HTTP $status"
    }
    echo "$seconds"
}

printf '\nattendance report, %s warm-up + %s timed runs per format and backend, %s cores (%s)\n' \
    "$WARMUP" "$RUNS" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
printf 'load average at start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
summary=()
for backend in $BACKENDS; do
    log "== $backend"
    SERVER_DIR="$(mktemp -d "$BENCH_TMP/$backend.XXXX")"
    new_database_url "$backend" "$SERVER_DIR"
    seed_start=$(date +%s.%N)
    cohorts_env seed-demo --large >"$SERVER_DIR/seed.txt" 2>"$SERVER_DIR/seed.err" || {
        cat "$SERVER_DIR/seed.err" >&2
        die "seed-demo --large failed"
    }
    seed_seconds="$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
    program_id="$(sed -n 's/^Benchmark program \([0-9]*\) is ready\.$/\1/p' "$SERVER_DIR/seed.txt")"
    records="$(sed -n 's/^\([0-9]*\) attendance records written\.$/\1/p' "$SERVER_DIR/seed.txt")"
    [[ -n "$program_id" ]] || { cat "$SERVER_DIR/seed.txt" >&2; die "no benchmark program id in the seed output"; }
    log "seed-demo --large: ${seed_seconds}s, benchmark program $program_id, $records attendance records in all"
    printf '%s\n' "$BENCH_PASSWORD" | cohorts_env user add --email "$BENCH_EMAIL" --name Bench \
        --role admin --password-stdin >&2 || die "user add failed"

    # Same server start as lib.sh's start_server, but the database is already seeded (so no
    # first-start admin is printed).
    port="$(free_port)"
    BASE_URL="http://127.0.0.1:$port"
    COHORTS_DATABASE_URL="$DATABASE_URL" \
        COHORTS_BIND="127.0.0.1:$port" \
        COHORTS_PUBLIC_URL="$BASE_URL" \
        COHORTS_DATA_DIR="$SERVER_DIR/data" \
        COHORTS_LOG="${COHORTS_LOG:-warn}" \
        COHORTS_SECRET_KEY="$BENCH_SECRET_KEY" \
        "$COHORTS_BIN" serve >"$SERVER_DIR/stdout" 2>"$SERVER_DIR/stderr" &
    SERVER_PID=$!
    BENCH_PIDS+=("$SERVER_PID")
    for i in $(seq 1 300); do
        curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_DIR/stderr" >&2; die "server exited during start"; }
        sleep 0.1
    done
    ((i < 300)) || die "server did not answer /healthz within 30 s"

    body="$(jq -nc --arg e "$BENCH_EMAIL" --arg p "$BENCH_PASSWORD" '{email: $e, password: $p}')"
    TOKEN="$(curl -fsS -XPOST "$BASE_URL/api/v1/auth/login" \
        -H 'content-type: application/json' -d "$body" | jq -r .token)"
    [[ -n "$TOKEN" && "$TOKEN" != null ]] || die "login as $BENCH_EMAIL failed"

    url="$BASE_URL/api/v1/programs/$program_id/attendance-report?${REPORT_QUERY}"
    [[ -z "$REPORT_QUERY" ]] || log "report parameters: $REPORT_QUERY"
    for _ in $(seq 1 "$WARMUP"); do
        time_get "$backend-json" "$url" >/dev/null
        time_get "$backend-csv" "$url&format=csv" >/dev/null
    done
    json_times=()
    csv_times=()
    for run in $(seq 1 "$RUNS"); do
        json_times+=("$(time_get "$backend-json" "$url")")
        csv_times+=("$(time_get "$backend-csv" "$url&format=csv")")
    done

    cohorts="$(jq '.cohorts | length' "$BENCH_TMP/$backend-json.out")"
    members="$(jq '.members | length' "$BENCH_TMP/$backend-json.out")"
    csv_rows="$(($(wc -l <"$BENCH_TMP/$backend-csv.out") - 1))"
    json_bytes="$(wc -c <"$BENCH_TMP/$backend-json.out")"
    csv_bytes="$(wc -c <"$BENCH_TMP/$backend-csv.out")"
    [[ "$cohorts" == "$EXPECT_COHORTS" ]] || log "warning: $backend JSON lists $cohorts cohorts (want $EXPECT_COHORTS)"
    [[ "$members" == "$EXPECT_MEMBERS" ]] || log "warning: $backend JSON lists $members members (want $EXPECT_MEMBERS)"
    [[ "$csv_rows" == "$EXPECT_MEMBERS" ]] || log "warning: $backend CSV has $csv_rows rows (want $EXPECT_MEMBERS)"
    log "$backend JSON: $cohorts cohorts, $members members, $json_bytes bytes; CSV: $csv_rows rows, $csv_bytes bytes"
    log "$backend JSON runs (s): ${json_times[*]}"
    log "$backend CSV runs (s):  ${csv_times[*]}"

    for kind in json csv; do
        if [[ "$kind" == json ]]; then times=("${json_times[@]}"); what="JSON ($cohorts cohorts)"; else times=("${csv_times[@]}"); what="CSV ($csv_rows rows)"; fi
        min="$(printf '%s\n' "${times[@]}" | sort -g | head -n1)"
        med="$(printf '%s\n' "${times[@]}" | median)"
        summary+=("$(printf '| %-8s | %-22s | %7.0f | %9.0f | %s |' "$backend" "$what" \
            "$(awk -v s="$min" 'BEGIN {print s * 1000}')" "$(awk -v s="$med" 'BEGIN {print s * 1000}')" \
            "$(for t in "${times[@]}"; do awk -v s="$t" 'BEGIN {printf "%.0f ", s * 1000}'; done | sed 's/ $//')")")
    done
    stop_server
done

printf '\n| backend  | response               |  min ms | median ms | all runs (ms) |\n'
printf '|----------|------------------------|--------:|----------:|---------------|\n'
printf '%s\n' "${summary[@]}"
