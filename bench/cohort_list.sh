#!/usr/bin/env bash
# GET /api/v1/cohorts?program_id= over the 1,000 cohorts of `seed-demo --large`, timed as
# whole curl processes by farm-bench (15 runs after 2 warm-ups), on SQLite and
# PostgreSQL, for one or more builds served from the same seeded database.
#
#   BINS="/tmp/cohorts-before /tmp/cohorts-after" bench/cohort_list.sh
#
# BINS [target/release/cohorts]: the binaries to compare; the first seeds the database.
# PostgreSQL: a local cluster where `runuser -u postgres` may create databases, and the
# role cohorts/cohorts on 127.0.0.1:5432.
set -euo pipefail
BINS="${BINS:-target/release/cohorts}"
read -r -a bins <<<"$BINS"
port=18556
for backend in sqlite postgres; do
    dir="$(mktemp -d)"
    if [ "$backend" = sqlite ]; then
        url="sqlite://$dir/cohorts.db"
    else
        runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS cohorts_list_bench" \
            -c "CREATE DATABASE cohorts_list_bench OWNER cohorts"
        url="postgres://cohorts:cohorts@127.0.0.1:5432/cohorts_list_bench"
    fi
    export COHORTS_DATABASE_URL="$url" COHORTS_DATA_DIR="$dir/data" COHORTS_LOG=warn \
        COHORTS_SECRET_KEY="cohort-list-bench-secret-0123456789abcdefghijkl"
    "${bins[0]}" seed-demo --large >/dev/null
    printf 'bench-password-123\n' | "${bins[0]}" user add --email bench@example.org \
        --name Bench --role admin --password-stdin >/dev/null
    for bin in "${bins[@]}"; do
        COHORTS_BIND="127.0.0.1:$port" "$bin" serve >"$dir/serve.log" 2>&1 &
        pid=$!
        for _ in $(seq 1 300); do curl -fs -o /dev/null "127.0.0.1:$port/healthz" && break; sleep 0.1; done
        token="$(curl -fsS -XPOST "127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
            -d '{"email":"bench@example.org","password":"bench-password-123"}' | jq -r .token)"
        listed="$(curl -fsS -H "Authorization: Bearer $token" "127.0.0.1:$port/api/v1/cohorts?program_id=2" | jq '.cohorts | length')"
        echo "== $backend, $bin: $listed cohorts ($(cut -d' ' -f1-3 /proc/loadavg) load)"
        farm-bench -n 15 --warmup 2 -- curl -s -o /dev/null -H "Authorization: Bearer $token" \
            "http://127.0.0.1:$port/api/v1/cohorts?program_id=2" 2>&1 | grep -E "wall s"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
done
