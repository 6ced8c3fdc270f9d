#!/usr/bin/env bash
# Benchmarks mgo bundles against plain `go build` output and prints a
# Markdown table: start time (bundle vs the variant it would exec), file size,
# warm-cache build time, and the launcher's size.
#
#   bench/bench.sh           full run (10-15 minutes on 2 cores)
#   bench/bench.sh --quick   few runs, only to smoke-test this script
#
# BENCH_RUNS_HELLO / BENCH_RUNS_GO override the number of timed start runs.
# A second table compares MGO_COMPRESS modes (BENCH_MODES, space-separated,
# "none" for uncompressed): size, start overhead, peak memory, build time.
set -euo pipefail

quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

for tool in hyperfine go python3 cargo readelf; do
  command -v "$tool" >/dev/null || case "$tool" in
    hyperfine) die "hyperfine not found; install it with: apt-get install -y hyperfine" ;;
    readelf) die "readelf not found; install it with: apt-get install -y binutils" ;;
    *) die "$tool not found in PATH" ;;
  esac
done

# Medians of ~1-10 ms processes need hundreds of runs to settle on a noisy
# 2-core machine; --quick only checks that every step works.
if ((quick)); then
  runs_hello=${BENCH_RUNS_HELLO:-20} runs_go=${BENCH_RUNS_GO:-10} warmup=3 build_runs=2
else
  runs_hello=${BENCH_RUNS_HELLO:-300} runs_go=${BENCH_RUNS_GO:-100} warmup=20 build_runs=3
fi

# The launcher obeys GOAMD64 and MGODEBUG at run time, and mgo reads GOAMD64
# as the lowest level to bundle: a value inherited from the caller's shell
# would silently change what we measure.
unset GOAMD64 MGODEBUG MGO_COMPRESS

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log "building mgo"
(cd "$root" && cargo build --release -q -p mgo)
mgo=$root/target/release/mgo

# build.rs copies the launcher to OUT_DIR/mgo-launcher; stale build dirs of
# older hashes may linger, so take the newest copy.
launcher=$(find "$root/target/release/build" -path '*/out/mgo-launcher' -type f \
  -printf '%T@ %p\n' | sort -rn | head -n1 | cut -d' ' -f2-)
[[ -n $launcher ]] || die "mgo-launcher not found under target/release/build"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

quote() {  # shell-quote words for display: 'a b' rather than printf %q's a\ b
  local w out=()
  for w; do
    if [[ $w =~ ^[[:alnum:]_./=:+-]+$ ]]; then out+=("$w"); else out+=("'${w//\'/\'\\\'\'}'"); fi
  done
  echo "${out[*]}"
}
method=()  # exact hyperfine command lines, printed below the table
hf() {     # hf JSON_OUT ARGS...: run hyperfine, remember how it was called
  local json=$1; shift
  local cmd=(hyperfine -N "$@" --export-json "$json")
  method+=("$(quote cd "$PWD") && $(quote "${cmd[@]}")")
  "${cmd[@]}" >&2  # keep stdout for the table; hyperfine's report is still visible
}
medians() { python3 -c 'import json,sys
print(*(r["median"] for r in json.load(open(sys.argv[1]))["results"]))' "$1"; }
calc() { python3 -c 'import sys; print(format(eval(sys.argv[1]), sys.argv[2]))' "$1" "$2"; }

# bench NAME DIR PKG RUNS GOAL_MS [RUN_ARGS...]: builds PKG from DIR both
# ways, then fills the row variables NAME_* that the table reads.
bench() {
  local name=$1 dir=$2 pkg=$3 runs=$4 goal=$5; shift 5
  local args=("$@") b=$work/$name.bundle v=$work/$name.variant p=$work/$name.plain
  log "$name: building bundle and plain binary (also warms the Go build cache)"
  (cd "$dir" && "$mgo" -o "$b" "$pkg" && GOAMD64=v1 go build -o "$p" "$pkg")
  # The variant the launcher would exec on this CPU, as a standalone file.
  MGODEBUG=extract "$b" >"$v"
  chmod +x "$v"
  local level
  level=$(go version -m "$v" | awk '$2 ~ /^GOAMD64=/ {sub(/GOAMD64=/, "", $2); print $2}')

  log "$name: start time, $runs runs"
  # -N: no intermediate shell, whose own start (~1 ms) would blur the overhead.
  hf "$work/$name.start.json" --warmup "$warmup" --runs "$runs" \
    "$b${args[*]:+ ${args[*]}}" "$v${args[*]:+ ${args[*]}}"
  local mb mv
  read -r mb mv < <(medians "$work/$name.start.json")

  log "$name: warm-cache build time, $build_runs runs"
  # rm -f: `go build -o X` skips the link when X is already up to date,
  # while mgo always links its four variants in a temporary directory.
  local mt gt
  pushd "$dir" >/dev/null  # not a subshell: hf must append to $method
  hf "$work/$name.build.json" --runs "$build_runs" --warmup 1 \
    --prepare "rm -f $work/$name.b2 $work/$name.p2" \
    "$mgo -o $work/$name.b2 $pkg" "env GOAMD64=v1 go build -o $work/$name.p2 $pkg"
  popd >/dev/null
  read -r mt gt < <(medians "$work/$name.build.json")

  local bsize psize off
  bsize=$(stat -c %s "$b") psize=$(stat -c %s "$p")
  # The first LOOS+0xd676f00 segment starts where the launcher part ends.
  off=$(readelf -lW "$b" | awk '$1 == "LOOS+0xd676f00" {print $2; exit}')
  local overhead
  overhead=$(calc "($mb - $mv) * 1e3" '+.2f')
  local met
  met=$(calc "'met' if $overhead <= $goal else 'NOT met'" s)

  eval "${name}_level=\$level"
  eval "${name}_sb=$(calc "$mb * 1e3" .2f) ${name}_sv=$(calc "$mv * 1e3" .2f)"
  eval "${name}_ov='$overhead (goal ≤ +$goal, $met)' ${name}_sr=$(calc "$mb / $mv" .2f)×"
  eval "${name}_bs=$bsize ${name}_ps=$psize ${name}_zr=$(calc "$bsize / $psize" .2f)×"
  eval "${name}_bm=$(calc "$mt" .2f) ${name}_bg=$(calc "$gt" .2f) ${name}_br=$(calc "$mt / $gt" .2f)×"
  eval "${name}_lp=$((off))"
}

bench hello "$root/examples/hello" . "$runs_hello" 1.2
bench cmdgo "$work" cmd/go "$runs_go" 11 env GOROOT

row() {  # row LABEL VAR_SUFFIX
  local h=hello_$2 g=cmdgo_$2
  echo "| $1 | ${!h} | ${!g} |"
}
echo "## mgo benchmark$( ((quick)) && echo ' (--quick: NOT for publishing)')"
echo
echo "| | examples/hello | cmd/go (\`env GOROOT\`) |"
echo "|---|---:|---:|"
row "level this CPU selects" level
row "start, bundle (median ms)" sb
row "start, variant run directly (median ms)" sv
row "launch overhead (ms)" ov
row "start ratio bundle/direct" sr
row "size, bundle (bytes)" bs
row "size, plain \`go build\` GOAMD64=v1 (bytes)" ps
row "size ratio bundle/plain" zr
row "build, \`mgo\` warm cache (median s)" bm
row "build, \`go build\` warm cache (median s)" bg
row "build ratio mgo/go" br
row "launcher part of bundle, page-aligned (bytes)" lp
echo
echo "Launcher: $(stat -c %s "$launcher") bytes ($launcher)."
echo
# --- MGO_COMPRESS modes ------------------------------------------------------
modes=${BENCH_MODES:-none g1 g6 g9 z1 z3 z9 z19 Z1 Z3 Z9 Z19 lz4}
if ((quick)); then mode_runs_hello=10 mode_runs_go=5; else mode_runs_hello=100 mode_runs_go=30; fi

# peak CMD...: the most memory CMD's process had charged at any moment
# (anonymous memory, the memfd's pages, page cache it filled), from a memory
# cgroup of its own: v2's memory.peak, else v1's max_usage_in_bytes. Lowest
# of 3 runs, in MB; "n/a" when no cgroup can be made (not root, no memory
# controller).
peak() {
  local cg best=""
  if [[ -w /sys/fs/cgroup/cgroup.subtree_control ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    cg=/sys/fs/cgroup/mgo-bench.$$ ; local file=memory.peak
  elif [[ -d /sys/fs/cgroup/memory ]]; then
    cg=/sys/fs/cgroup/memory/mgo-bench.$$ ; local file=memory.max_usage_in_bytes
  else
    echo n/a; return
  fi
  local i v
  for i in 1 2 3; do
    mkdir "$cg" 2>/dev/null || { echo n/a; return; }
    v=$(sh -c 'echo $$ > "$1"/cgroup.procs 2>/dev/null || echo $$ > "$1"/tasks; shift; exec "$@"' sh "$cg" "$@" >/dev/null 2>&1; cat "$cg/$file")
    rmdir "$cg"
    [[ -z $best || $v -lt $best ]] && best=$v
  done
  calc "$best / 1e6" .1f
}

# mode_rows NAME DIR PKG PLAIN RUNS [RUN_ARGS...]: one table row per mode.
mode_rows() {
  local name=$1 dir=$2 pkg=$3 plain=$4 runs=$5; shift 5
  local args=("$@") mode b v t0 t1 mb mv
  local psize; psize=$(stat -c %s "$plain")
  v=$work/$name.variant
  local direct_peak; direct_peak=$(peak "$v" "${args[@]}")
  for mode in $modes; do
    local value=$mode; [[ $mode == none ]] && value=""
    b=$work/$name.mode.$mode
    log "$name: MGO_COMPRESS=$value"
    t0=$(date +%s.%N)
    (cd "$dir" && MGO_COMPRESS=$value "$mgo" -o "$b" "$pkg")
    t1=$(date +%s.%N)
    hf "$work/$name.$mode.json" --warmup "$warmup" --runs "$runs" \
      "$b${args[*]:+ ${args[*]}}" "$v${args[*]:+ ${args[*]}}"
    read -r mb mv < <(medians "$work/$name.$mode.json")
    echo "| $name | ${mode} | $(calc "$(stat -c %s "$b") / $psize" .3f)× | $(calc "$mb * 1e3" .2f) | $(calc "($mb - $mv) * 1e3" +.2f) | $(peak "$b" "${args[@]}") (direct $direct_peak) | $(calc "$t1 - $t0" .1f) |"
    rm -f "$b"
  done
}

echo
echo "### MGO_COMPRESS modes"
echo
echo "Size relative to one plain \`go build\` (GOAMD64=v1). Start overhead: median"
echo "of the bundle minus median of the variant it execs, run directly. Peak memory"
echo "at launch: cgroup peak of the whole run (MB). Build: one warm-cache mgo run."
echo
echo "| program | MGO_COMPRESS | size / plain | start (ms) | start overhead (ms) | peak memory (MB) | build (s) |"
echo "|---|---|---:|---:|---:|---:|---:|"
mode_rows hello "$root/examples/hello" . "$work/hello.plain" "$mode_runs_hello"
mode_rows cmdgo "$work" cmd/go "$work/cmdgo.plain" "$mode_runs_go" env GOROOT
echo
echo "Launchers (bytes):"
for flavor in "" -zstd -deflate -lz4; do
  f=$(find "$root/target/release/build" -path "*/out/mgo-launcher$flavor" -type f -printf '%T@ %p\n' | sort -rn | head -n1 | cut -d' ' -f2-)
  echo "- mgo-launcher$flavor: $(stat -c %s "$f")"
done
echo

echo "### Method"
echo
echo "Start runs: hello $runs_hello, cmd/go $runs_go; warmup $warmup. Medians from"
echo "hyperfine's JSON. Build times: Go cache warmed by a prior build of each, then"
echo "$build_runs timed runs after 1 warmup; outputs removed before each run."
echo "The variant is \`MGODEBUG=extract BUNDLE > VARIANT\`. Commands (temp dir since removed):"
echo
echo '```'
printf '%s\n' "${method[@]}"
echo '```'
echo
echo "### Machine"
echo
echo "- nproc: $(nproc)"
echo "- CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
echo "- kernel: $(uname -r)"
echo "- $(go version)"
echo "- $(hyperfine --version)"
