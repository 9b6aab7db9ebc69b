#!/usr/bin/env bash
# TCP request/response side by side: ember_io_bench's load client against
# the ember server, the plain Asio server, a Go server (a goroutine per
# connection) and an Erlang/OTP server (gen_tcp, a process per connection,
# {active, once}); the peer servers are benchmarks/peers/tcp_echo.{go,erl}.
# Prints ember_io_bench's result lines (bench=tcp_echo runtime=... ok=...)
# on stdout, the build and the load average on stderr.
#
#   bash benchmarks/tcp_peers.sh
#
# Env:
#   BUILD_DIR  build folder (default: build-bench in the repository root);
#              the peer servers are built into $BUILD_DIR/tcp-peers
#   CORES      server threads for every runtime (ember workers, Asio
#              io_context threads, GOMAXPROCS, Erlang +S N:N; default: nproc)
#   CONNS      connection counts to run (default: "1 100 1000")
#   N          requests per run (default: 200000)
#   RUNTIMES   default "ember ember_active asio go erlang"
#
# Needs, besides what ember's build needs: Go (Debian: golang-go) and
# Erlang/OTP with erlc (Debian: erlang-base).  A peer whose toolchain is
# missing is skipped with a message.  No network access is needed: the Go
# server uses the standard library only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
CORES=${CORES:-$(nproc)}
CONNS=${CONNS:-"1 100 1000"}
N=${N:-200000}
RUNTIMES=${RUNTIMES:-"ember ember_active asio go erlang"}
export CORES

mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
PEER_DIR=$BUILD_DIR/tcp-peers
mkdir -p "$PEER_DIR"
# go (its build cache) and erl (erlexec) want a HOME.
[ -n "${HOME:-}" ] || export HOME=$PEER_DIR

# -- build ------------------------------------------------------------------
gen=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then gen=(-G Ninja); fi
echo "== configuring ember (Release) in $BUILD_DIR" >&2
cmake -S "$ROOT" -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DEMBER_BUILD_BENCHMARKS=ON -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_EXAMPLES=OFF >&2
cmake --build "$BUILD_DIR" --target ember_io_bench -j "$(nproc)" >&2
BENCH=$BUILD_DIR/benchmarks/ember_io_bench
[ -x "$BENCH" ] || { echo "tcp_peers.sh: $BENCH was not built" >&2; exit 1; }

have_go=0 have_erlang=0
if command -v go >/dev/null; then
  echo "== building the Go server ($(go version))" >&2
  # No module, no downloads.
  (cd "$PEER_DIR" && GO111MODULE=off go build -o tcp_echo_go "$ROOT/benchmarks/peers/tcp_echo.go") >&2
  have_go=1
fi
if command -v erlc >/dev/null && command -v erl >/dev/null; then
  echo "== building the Erlang server (erlc)" >&2
  erlc -o "$PEER_DIR" "$ROOT/benchmarks/peers/tcp_echo.erl" >&2
  have_erlang=1
fi

# -- run ----------------------------------------------------------------------
SERVER=""  # pid of the peer server running now, for the trap
trap '[ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null; true' EXIT

# run_peer LABEL C N COMMAND...: start the server (its stdin a pipe from us,
# its first stdout line "port=<n>"), run the client against it, then close
# its stdin and wait for it (SIGTERM after 5 s).
run_peer() {
  local label=$1 c=$2 n=$3 line="" port _
  shift 3
  coproc PEER { exec "$@"; }
  # shellcheck disable=SC2153  # PEER_PID is set by coproc
  SERVER=$PEER_PID
  local in=${PEER[1]} out=${PEER[0]}
  if read -r -t 30 line <&"$out" && [[ $line =~ ^port=([0-9]+)$ ]]; then
    port=${BASH_REMATCH[1]}
    SERVER_PID=$SERVER "$BENCH" connect "$label" "$port" "$c" "$n"
  else
    echo "tcp_peers.sh: $label server printed no port line (got '$line')" >&2
  fi
  exec {in}>&- {out}<&-
  for _ in $(seq 50); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

echo "== CORES=$CORES N=$N CONNS='$CONNS' RUNTIMES='$RUNTIMES'" >&2
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in $CONNS; do
  for rt in $RUNTIMES; do
    case $rt in
      ember | ember_active | ember_io_thread | asio) "$BENCH" "$rt" "$c" "$N" ;;
      go)
        if [ $have_go = 1 ]; then run_peer go "$c" "$N" "$PEER_DIR/tcp_echo_go" 0
        else echo "tcp_peers.sh: go not found (Debian: golang-go); skipping go" >&2; fi ;;
      erlang)
        if [ $have_erlang = 1 ]; then
          run_peer erlang "$c" "$N" erl +S "$CORES:$CORES" -noshell -pa "$PEER_DIR" -s tcp_echo main 0
        else echo "tcp_peers.sh: erl/erlc not found (Debian: erlang-base); skipping erlang" >&2; fi ;;
      *) echo "tcp_peers.sh: unknown runtime $rt" >&2 ;;
    esac
  done
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
