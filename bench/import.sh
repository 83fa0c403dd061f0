#!/usr/bin/env bash
# Time of a 10,000-row CSV patient import, on SQLite and PostgreSQL.
#
# Generates one CSV (header name,email,timezone,email_consent,dosed_at; every row dosed
# at a different past time between August and November 2026, one in ten without email
# consent). Each run gets a fresh database and a fresh `cohorts serve` on a free loopback
# port; the first-start admin logs in, creates a program, and
#   curl -w '%{time_total}' -XPOST -H 'Content-Type: text/csv' --data-binary @patients.csv \
#        /api/v1/programs/{id}/patients/import
# is timed. The response must be 201 with imported = 10000. RUNS runs per backend;
# prints every time and the min/median.
#
# Binary: $COHORTS_BIN, or `cargo build --release` (CARGO_TARGET_DIR honoured, default target/).
# Knobs (defaults in brackets): BACKENDS [sqlite postgres], RUNS [3], ROWS [10000].
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap bench_cleanup EXIT

BACKENDS="${BACKENDS:-sqlite postgres}"
RUNS="${RUNS:-3}"
ROWS="${ROWS:-10000}"

resolve_bin

csv="$BENCH_TMP/patients.csv"
awk -v rows="$ROWS" 'BEGIN {
    print "name,email,timezone,email_consent,dosed_at"
    for (i = 1; i <= rows; i++) {
        month = 8 + i % 4                       # August … November 2026
        day = 1 + int(i / 4) % 27               # 1 … 27: always before 2026-11-28
        hour = 8 + i % 10
        minute = (i * 7) % 60
        offset = (month == 11) ? "-08:00" : "-07:00"
        consent = (i % 10 == 0) ? "false" : "true"
        printf "Patient %d,p%d@example.org,,%s,2026-%02d-%02dT%02d:%02d:00%s\n", \
            i, i, consent, month, day, hour, minute, offset
    }
}' >"$csv"
log "CSV: $ROWS rows, $(wc -c <"$csv") bytes"

printf '\n%s patients per import, %s runs per backend, %s cores (%s)\n' "$ROWS" "$RUNS" \
    "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
printf 'load average at start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
summary=()
for backend in $BACKENDS; do
    times=()
    for run in $(seq 1 "$RUNS"); do
        start_server "$backend"
        login
        program_id="$(create_program "Bench import $run")"
        read -r status seconds < <(curl -sS -o "$BENCH_TMP/import-response.json" \
            -w '%{http_code} %{time_total}\n' -XPOST \
            -H 'Content-Type: text/csv' -H "Authorization: Bearer $TOKEN" \
            --data-binary "@$csv" "$BASE_URL/api/v1/programs/$program_id/patients/import")
        imported="$(jq -r '.imported // empty' "$BENCH_TMP/import-response.json" 2>/dev/null || true)"
        if [[ "$status" != 201 || "$imported" != "$ROWS" ]]; then
            head -c 2000 "$BENCH_TMP/import-response.json" >&2
            die "$backend run $run: HTTP $status, imported=${imported:-?} (want 201 and $ROWS)"
        fi
        printf '%-8s run %d: %.3f s (HTTP %s, imported %s)\n' "$backend" "$run" "$seconds" "$status" "$imported"
        times+=("$seconds")
        stop_server
    done
    min="$(printf '%s\n' "${times[@]}" | sort -g | head -n1)"
    med="$(printf '%s\n' "${times[@]}" | median)"
    summary+=("$(printf '| %-8s | %6s | %7.3f | %8.3f | %s |' "$backend" "$ROWS" "$min" "$med" \
        "$(printf '%.3f ' "${times[@]}" | sed 's/ $//')")")
done

printf '\n| backend  |   rows |   min s | median s | all runs (s) |\n'
printf '|----------|-------:|--------:|---------:|--------------|\n'
printf '%s\n' "${summary[@]}"
