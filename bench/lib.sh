# Shared helpers for the bench/*.sh scripts. Source it; do not run it.
#
# Every server binds to 127.0.0.1 on a free port, every PostgreSQL database is a fresh
# `cohorts_bench_<random>` one, and `bench_cleanup` (installed as an EXIT trap by the
# callers) stops the servers and drops the databases this run created.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_PG_ADMIN_URL="${BENCH_PG_ADMIN_URL:-postgres://cohorts:cohorts@127.0.0.1/postgres}"
BENCH_PG_BASE="${BENCH_PG_BASE:-postgres://cohorts:cohorts@127.0.0.1}"
BENCH_SECRET_KEY="bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"

BENCH_TMP="$(mktemp -d /tmp/cohorts-bench.XXXXXX)"
BENCH_PIDS=()
BENCH_DBS=()

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Sets COHORTS_BIN: the given binary, or a release build (CARGO_TARGET_DIR honoured).
resolve_bin() {
    if [[ -n "${COHORTS_BIN:-}" ]]; then
        [[ -x "$COHORTS_BIN" ]] || die "COHORTS_BIN=$COHORTS_BIN is not an executable"
    else
        local target="${CARGO_TARGET_DIR:-$BENCH_ROOT/target}"
        log "building release binary (CARGO_TARGET_DIR=$target)…"
        (cd "$BENCH_ROOT" && CARGO_TARGET_DIR="$target" cargo build --release --quiet)
        COHORTS_BIN="$target/release/cohorts"
    fi
    log "binary: $COHORTS_BIN"
}

bench_cleanup() {
    local pid db
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for db in "${BENCH_DBS[@]}"; do
        psql -q "$BENCH_PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$BENCH_TMP"
}

# A port below the kernel's ephemeral range (wrk's client sockets live there) that no
# socket uses in any state.
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 12000))
        if [[ -z "$(ss -Htan "( sport = :$port or dport = :$port )" 2>/dev/null)" ]]; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

# new_database_url sqlite|postgres DIR → sets DATABASE_URL to a fresh database.
# (Not run in a subshell, so that BENCH_DBS records what bench_cleanup must drop.)
new_database_url() {
    local backend="$1" dir="$2"
    case "$backend" in
        sqlite) DATABASE_URL="sqlite://$dir/cohorts.db" ;;
        postgres)
            local db
            db="cohorts_bench_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
            psql -q "$BENCH_PG_ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null \
                || die "cannot create database $db (is PostgreSQL running? pg_ctlcluster 15 main start)"
            BENCH_DBS+=("$db")
            DATABASE_URL="$BENCH_PG_BASE/$db"
            ;;
        *) die "unknown backend $backend" ;;
    esac
}

# start_server sqlite|postgres → sets SERVER_PID, BASE_URL, ADMIN_PASSWORD, SERVER_DIR.
# Extra environment (e.g. COHORTS_DB_POOL_SIZE) is inherited from the caller.
start_server() {
    local backend="$1"
    SERVER_DIR="$(mktemp -d "$BENCH_TMP/$backend.XXXX")"
    local port
    new_database_url "$backend" "$SERVER_DIR"
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
    local i
    for i in $(seq 1 300); do
        if curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null; then
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || {
            cat "$SERVER_DIR/stderr" >&2
            die "server exited during start"
        }
        sleep 0.1
    done
    ((i < 300)) || die "server did not answer /healthz within 30 s"
    ADMIN_PASSWORD="$(sed -n 's/^  password: //p' "$SERVER_DIR/stdout" | head -n1)"
    [[ -n "$ADMIN_PASSWORD" ]] || die "no first-start admin password on stdout"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# login → sets TOKEN (admin@localhost with the first-start password).
login() {
    local body
    body="$(jq -nc --arg p "$ADMIN_PASSWORD" '{email: "admin@localhost", password: $p}')"
    TOKEN="$(curl -fsS -XPOST "$BASE_URL/api/v1/auth/login" \
        -H 'content-type: application/json' -d "$body" | jq -r .token)"
    [[ -n "$TOKEN" && "$TOKEN" != null ]] || die "login failed"
}

# create_program [NAME] → prints the new program's id.
create_program() {
    local name="${1:-Bench}" body id
    body="$(jq -nc --arg n "$name" \
        '{name: $n, site: "Nanaimo", timezone: "America/Vancouver", modality: "ketamine"}')"
    id="$(curl -fsS -XPOST "$BASE_URL/api/v1/programs" \
        -H 'content-type: application/json' -H "Authorization: Bearer $TOKEN" \
        -d "$body" | jq -r .id)"
    [[ "$id" =~ ^[0-9]+$ ]] || die "creating a program failed"
    echo "$id"
}

# Median of numbers on stdin (the lower middle one for an even count).
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
