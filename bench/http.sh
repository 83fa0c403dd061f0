#!/usr/bin/env bash
# HTTP throughput of an unauthenticated and an authenticated read, on SQLite and PostgreSQL.
#
# For each backend: a fresh database, `cohorts serve` on a free loopback port, the
# first-start admin logs in and creates one program, then (same server, same run)
#   wrk -t2 -c32 -d15s --latency                          GET /healthz
#   wrk -t2 -c32 -d15s --latency -H 'Authorization: …'    GET /api/v1/programs/{id}
# and prints requests/s, p50/p99 latency and the ratio authed/healthz.
#
# Binary: $COHORTS_BIN, or `cargo build --release` (CARGO_TARGET_DIR honoured, default target/).
# Knobs (defaults in brackets): BACKENDS [sqlite postgres], WRK_THREADS [2],
# WRK_CONNECTIONS [32], WRK_DURATION [15s]; server environment such as
# COHORTS_DB_POOL_SIZE or COHORTS_LOG [warn] is passed through.
# PostgreSQL: role cohorts/cohorts on 127.0.0.1:5432 allowed to create databases.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap bench_cleanup EXIT

BACKENDS="${BACKENDS:-sqlite postgres}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-32}"
WRK_DURATION="${WRK_DURATION:-15s}"

command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"
resolve_bin

# wrk latency figure ("812.00us", "1.23ms", "2.01s") → milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# run_wrk LABEL URL [wrk args…] → prints "rps p50_ms p99_ms errors" and keeps the raw output.
run_wrk() {
    local label="$1" url="$2"
    shift 2
    local out="$BENCH_TMP/wrk-$label.txt"
    wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency "$@" "$url" >"$out"
    local rps p50 p99 non2xx sockerr
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    sockerr="$(grep -o 'Socket errors:.*' "$out" || true)"
    if [[ -n "$non2xx" || -n "$sockerr" ]]; then
        log "warning: $label: ${non2xx:+$non2xx non-2xx responses} $sockerr"
        cat "$out" >&2
    fi
    echo "$rps $p50 $p99 ${non2xx:-0}"
}

printf '\nwrk -t%s -c%s -d%s, pool size %s, log %s, %s cores (%s)\n' \
    "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION" "${COHORTS_DB_POOL_SIZE:-8 (default)}" \
    "${COHORTS_LOG:-warn}" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
printf 'load average at start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
results=()
for backend in $BACKENDS; do
    log "== $backend"
    start_server "$backend"
    login
    program_id="$(create_program Bench)"
    curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE_URL/api/v1/programs/$program_id" \
        || die "authenticated GET of program $program_id failed"
    read -r h_rps h_p50 h_p99 h_err < <(run_wrk "$backend-healthz" "$BASE_URL/healthz")
    read -r a_rps a_p50 a_p99 a_err < <(run_wrk "$backend-authed" \
        "$BASE_URL/api/v1/programs/$program_id" -H "Authorization: Bearer $TOKEN")
    ratio="$(awk -v a="$a_rps" -v h="$h_rps" 'BEGIN {printf "%.0f", 100 * a / h}')"
    results+=("$(printf '| %-8s | %-26s | %10s | %7s | %7s | %7s |' "$backend" "GET /healthz" "$h_rps" "$h_p50" "$h_p99" "$h_err")")
    results+=("$(printf '| %-8s | %-26s | %10s | %7s | %7s | %7s |' "$backend" "GET /api/v1/programs/{id}" "$a_rps" "$a_p50" "$a_p99" "$a_err")")
    results+=("$(printf '| %-8s | %-26s | %10s | %7s | %7s | %7s |' "$backend" "authed / healthz" "$ratio %" "" "" "")")
    stop_server
done

printf '\n| backend  | request                    |      req/s |  p50 ms |  p99 ms | non-2xx |\n'
printf '|----------|----------------------------|-----------:|--------:|--------:|-------:|\n'
printf '%s\n' "${results[@]}"
