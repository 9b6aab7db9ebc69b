#!/usr/bin/env bash
# Build ember_bench in Release and run it next to the peer runtimes
# (Erlang/OTP, CAF, Go) with the bench-peers runner, then write the table
# into docs/performance.md (the section between <!-- bench:begin --> and
# <!-- bench:end -->).
#
#   bash benchmarks/run.sh [--quick] [--reps N] [other run_peers.sh arguments]
#
# Env:
#   PEERS_DIR   the bench-peers suite (default: ../shared/bench-peers relative
#               to the repository root)
#   BUILD_DIR   build folder (default: build-bench in the repository root)
#   PEERS_WORK  where the runner builds the peers and keeps its results
#               (default: $BUILD_DIR/peers-work)
#   RUNTIMES    default "erlang caf go ember"
#   WORKLOADS   default "pingpong ring skynet spawn_idle fanin timers"
#   CORES       thread count for every runtime (default: nproc)
#   NO_DOC=1    do not touch docs/performance.md
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/bench-peers}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
RUNTIMES=${RUNTIMES:-"erlang caf go ember"}
WORKLOADS=${WORKLOADS:-"pingpong ring skynet spawn_idle fanin timers"}
DOC=$ROOT/docs/performance.md

RUNNER=$PEERS_DIR/run_peers.sh
if [ ! -f "$RUNNER" ]; then
  echo "run.sh: no bench-peers runner at $RUNNER (set PEERS_DIR)" >&2
  exit 1
fi
mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
export PEERS_WORK=${PEERS_WORK:-$BUILD_DIR/peers-work}

# -- build ------------------------------------------------------------------
gen=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then gen=(-G Ninja); fi
echo "== configuring ember (Release) in $BUILD_DIR" >&2
cmake -S "$ROOT" -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DEMBER_BUILD_BENCHMARKS=ON -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_EXAMPLES=OFF >&2
cmake --build "$BUILD_DIR" --target ember_bench -j "$(nproc)" >&2
BENCH=$BUILD_DIR/benchmarks/ember_bench
# Which ember was measured.
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- include src CMakeLists.txt 2>/dev/null)" ]; then
  REV="$REV + uncommitted changes"
fi
[ -x "$BENCH" ] || { echo "run.sh: $BENCH was not built" >&2; exit 1; }

# -- run ----------------------------------------------------------------------
MODE=full
for a in "$@"; do [ "$a" = --quick ] && MODE=quick; done
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
echo "== running $RUNNER" >&2
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
CMD_ember=$BENCH bash "$RUNNER" --runtimes "$RUNTIMES" --only "$WORKLOADS" "$@" | tee "$OUT"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
TSV=$PEERS_WORK/results/peers-$MODE.tsv
LOG=$PEERS_WORK/results/peers-$MODE.log

[ "${NO_DOC:-0}" = 1 ] && exit 0

# -- the section for docs/performance.md -------------------------------------
rel_peers=$(realpath -m --relative-to="$ROOT" "$PEERS_DIR")
rel_bench=$(realpath -m --relative-to="$ROOT" "$BENCH")
quote() { local s="" a; for a in "$@"; do case $a in *[!A-Za-z0-9_./=-]*|'') s+=" '$a'" ;; *) s+=" $a" ;; esac; done; printf '%s' "$s"; }
env_prefix=""
[ -n "${CORES:-}" ] && env_prefix+="CORES=$CORES "
[ "$RUNTIMES" != "erlang caf go ember" ] && env_prefix+="RUNTIMES='$RUNTIMES' "
[ "$WORKLOADS" != "pingpong ring skynet spawn_idle fanin" ] && env_prefix+="WORKLOADS='$WORKLOADS' "

median() { # lower median over reps, as the runner computes it; "-" if absent
  awk -F'\t' -v w="$1" -v r="$2" -v k="$3" '$1==w && $2==r && $4==k {print $5}' "$TSV" |
    sort -g | awk '{v[NR]=$0} END {if (NR==0) print "-"; else print v[int((NR+1)/2)]}'
}
all_ok() { # every run of (workload, runtime) printed ok=1
  awk -F'\t' -v w="$1" -v r="$2" '$1==w && $2==r && $4=="ok" {n++; if ($5!="1") bad++}
    END {exit !(n>0 && bad==0)}' "$TSV"
}
fmt() { awk -v v="$1" 'BEGIN { if (v !~ /^[-+]?[0-9]/) print v;
  else if (v+0 >= 100) printf "%.0f\n", v; else if (v+0 >= 10) printf "%.1f\n", v;
  else if (v+0 >= 1) printf "%.2f\n", v; else printf "%.3f\n", v }'; }
isnum() { [[ $1 =~ ^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]]; }

targets() {
  echo "| target | ember (median) | met? |"
  echo "|---|---:|---|"
  local spec w k lim label v verdict
  for spec in \
      "pingpong:ns_per_roundtrip:80:pingpong ≤ 80 ns per round trip" \
      "ring:ns_per_hop:40:ring ≤ 40 ns per hop" \
      "fanin:ns_per_msg:40:fanin ≤ 40 ns per message" \
      "ring:spawn_ns_per_process:300:ring spawn ≤ 300 ns per process" \
      "spawn_idle:bytes_per_process:4608:spawn_idle ≤ 4.5 KiB (4608 B) per idle process"; do
    IFS=: read -r w k lim label <<<"$spec"
    v=$(median "$w" ember "$k")
    if ! isnum "$v"; then verdict="not run"
    elif ! all_ok "$w" ember; then verdict="no (FAILED CHECK)"
    elif awk -v v="$v" -v l="$lim" 'BEGIN {exit !(v+0 <= l+0)}'; then verdict="yes"
    else verdict=$(awk -v v="$v" -v l="$lim" 'BEGIN {printf "no (%.1fx the target)", v/l}')
    fi
    echo "| $label | $(fmt "$v") | $verdict |"
  done
  # skynet: at least 3x faster than the fastest peer.
  local best="" bestrt="" rt pv
  for rt in $RUNTIMES; do
    [ "$rt" = ember ] && continue
    pv=$(median skynet "$rt" seconds)
    isnum "$pv" && all_ok skynet "$rt" || continue
    if [ -z "$best" ] || awk -v a="$pv" -v b="$best" 'BEGIN {exit !(a+0 < b+0)}'; then best=$pv bestrt=$rt; fi
  done
  v=$(median skynet ember seconds)
  label="skynet 1M ≥ 3× faster than the fastest peer"
  [ "$MODE" = quick ] && label="$label (quick run: 100k leaves)"
  if ! isnum "$v"; then verdict="not run"
  elif ! all_ok skynet ember; then verdict="no (FAILED CHECK)"
  elif [ -z "$best" ]; then verdict="no peer result to compare with"
  else
    verdict=$(awk -v v="$v" -v b="$best" -v rt="$bestrt" 'BEGIN {r=b/v;
      printf "%s (%.2fx faster than %s, %.3f s)", (r >= 3 ? "yes" : "no"), r, rt, b}')
  fi
  echo "| $label | $(fmt "$v") s | $verdict |"
}

SECTION=$(mktemp)
trap 'rm -f "$OUT" "$SECTION"' EXIT
{
  echo "<!-- bench:begin -->"
  echo "<!-- generated by benchmarks/run.sh; rerun it rather than editing this section -->"
  echo
  echo "Command (from the repository root):"
  echo
  echo '```'
  echo "${env_prefix}bash benchmarks/run.sh$(quote "$@")"
  echo '```'
  echo
  echo "which builds \`ember_bench\` with \`CMAKE_BUILD_TYPE=Release\` and runs"
  echo
  echo '```'
  echo "${env_prefix:+${env_prefix}}CMD_ember=$rel_bench $rel_peers/run_peers.sh --runtimes \"$RUNTIMES\" --only \"$WORKLOADS\"$(quote "$@")"
  echo '```'
  echo
  # The runner's header (mode, cores, reps, date), machine line and table.
  sed -n '/^Peer runtimes, /,$p' "$OUT"
  echo
  echo "ember revision measured: $REV."
  echo
  echo "Load average (1/5/15 min) before the run: $LOAD0; after: $LOAD1 (other work on the"
  echo "machine during the run makes every number noisier)."
  echo
  echo "Targets (ember, $MODE sizes):"
  echo
  targets
  echo
  echo "Raw ember result lines:"
  echo
  echo '```'
  grep '^bench=.* runtime=ember ' "$LOG" || echo "(none)"
  echo '```'
  echo "<!-- bench:end -->"
} > "$SECTION"

mkdir -p "$(dirname "$DOC")"
if [ -f "$DOC" ] && grep -q '^<!-- bench:begin -->' "$DOC" && grep -q '^<!-- bench:end -->' "$DOC"; then
  awk -v sec="$SECTION" '
    /^<!-- bench:begin -->/ {while ((getline l < sec) > 0) print l; skip=1; next}
    /^<!-- bench:end -->/ {skip=0; next}
    !skip {print}' "$DOC" > "$DOC.tmp"
  mv "$DOC.tmp" "$DOC"
else
  { [ -f "$DOC" ] && cat "$DOC" && echo; cat "$SECTION"; } > "$DOC.tmp"
  mv "$DOC.tmp" "$DOC"
fi
echo "== wrote $DOC" >&2
