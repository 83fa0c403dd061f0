#!/usr/bin/env bash
# Time of an HTTP formation dry run over a 10,000-patient waitlist, on SQLite (and
# PostgreSQL with BACKENDS="sqlite postgres").
#
# Imports ROWS patients dosed at spread times over the last 20 days (all on the
# waitlist), then times `POST /api/v1/programs/{id}/cohort-formations {"dry_run": true}`
# RUNS times with curl -w '%{time_total}'; the response must be 200 and place patients.
# Prints every time, the min/median and the plan size (cohorts, placed, still waiting).
#
# Binary: $COHORTS_BIN, or `cargo build --release`. Knobs: BACKENDS [sqlite], RUNS [5],
# ROWS [10000]. Needs an awk with strftime (gawk, or mawk 1.3.4 as on Debian 12).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap bench_cleanup EXIT

BACKENDS="${BACKENDS:-sqlite}"
RUNS="${RUNS:-5}"
ROWS="${ROWS:-10000}"

resolve_bin

csv="$BENCH_TMP/waitlist.csv"
now_epoch="$(date +%s)"
awk -v rows="$ROWS" -v now="$now_epoch" 'BEGIN {
    print "name,email,timezone,email_consent,dosed_at"
    for (i = 1; i <= rows; i++) {
        t = now - 86400 - (i * 172.8)           # spread over the last 20 days
        printf "Patient %d,p%d@example.org,,true,%s\n", i, i, strftime("%Y-%m-%dT%H:%M:%SZ", t, 1)
    }
}' >"$csv"

printf '\n%s waitlisted patients, %s runs per backend, %s cores (%s)\n' "$ROWS" "$RUNS" \
    "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
printf 'load average at start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
summary=()
for backend in $BACKENDS; do
    start_server "$backend"
    login
    program_id="$(create_program "Bench formation")"
    status="$(curl -sS -o /dev/null -w '%{http_code}' -XPOST -H 'Content-Type: text/csv' \
        -H "Authorization: Bearer $TOKEN" --data-binary "@$csv" \
        "$BASE_URL/api/v1/programs/$program_id/patients/import")"
    [[ "$status" == 201 ]] || die "import failed: HTTP $status"
    times=()
    for run in $(seq 1 "$RUNS"); do
        read -r status seconds < <(curl -sS -o "$BENCH_TMP/plan.json" -w '%{http_code} %{time_total}\n' \
            -XPOST -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
            -d '{"dry_run": true}' "$BASE_URL/api/v1/programs/$program_id/cohort-formations")
        [[ "$status" == 200 ]] || die "dry run failed: HTTP $status"
        times+=("$seconds")
    done
    cohorts="$(jq '.cohorts | length' "$BENCH_TMP/plan.json")"
    placed="$(jq '[.cohorts[].members | length] | add // 0' "$BENCH_TMP/plan.json")"
    waiting="$(jq '.waiting | length' "$BENCH_TMP/plan.json")"
    # The header promises a plan that places patients: an empty plan is not a measurement.
    ((placed > 0)) || die "$backend: the dry run placed nobody ($cohorts cohorts, $waiting waiting)"
    min="$(printf '%s\n' "${times[@]}" | sort -g | head -n1)"
    med="$(printf '%s\n' "${times[@]}" | median)"
    printf '%-8s dry run: %s cohorts, %s placed, %s still waiting; runs (s): %s\n' "$backend" \
        "$cohorts" "$placed" "$waiting" "${times[*]}"
    summary+=("$(printf '| %-8s | %6s | %7s | %6s | %7.3f | %8.3f | %s |' "$backend" "$ROWS" "$cohorts" \
        "$placed" "$min" "$med" "$(printf '%.3f ' "${times[@]}" | sed 's/ $//')")")
    stop_server
done

printf '\n| backend  |   rows | cohorts | placed |   min s | median s | all runs (s) |\n'
printf '|----------|-------:|--------:|-------:|--------:|---------:|--------------|\n'
printf '%s\n' "${summary[@]}"
