#!/usr/bin/env bash
# Benchmarks mgo bundles against plain `go build` output and prints Markdown
# tables, with both ways a bundle starts its build side by side: mapped in
# place (the default) and through a memfd (MGODEBUG=memfd).
#
#   bench/bench.sh           full run (20-30 minutes on 2 cores)
#   bench/bench.sh --quick   few runs, only to smoke-test this script
#
# 1. Uncompressed bundles of examples/hello and GOROOT's cmd/go: start time
#    against the build they start, run directly; size; warm-cache build time;
#    an up-to-date rebuild against an up-to-date `go build`.
# 2. Memory of 20 running instances (total Pss and shared memory).
# 3. The MGO_COMPRESS modes (BENCH_MODES, space-separated): size, start
#    overhead both ways, peak memory at start, build time, and how long
#    MGODEBUG=extract takes to re-create the build (DWARF deflated again).
# 4. A large program, restic from the module proxy (BENCH_LARGE=1, the
#    default of a full run): start overhead and peak memory, mapped and
#    from the file start, against the build run directly.
#
# Start times are medians over BENCH_ROUNDS rounds (default 3) of hyperfine,
# each round running every command BENCH_RUNS_HELLO / BENCH_RUNS_GO times in
# turn: on a shared 2-core VM, a single long series drifts by tenths of a
# millisecond, which is the size of what is measured.
set -euo pipefail

quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

if ((quick)); then
  runs_hello=${BENCH_RUNS_HELLO:-20} runs_go=${BENCH_RUNS_GO:-10} rounds=${BENCH_ROUNDS:-1}
  warmup=3 build_runs=2 build_noop_runs=5 mode_runs_hello=10 mode_runs_go=5
  modes=${BENCH_MODES:-z3 lz4} large=${BENCH_LARGE:-0}
else
  runs_hello=${BENCH_RUNS_HELLO:-300} runs_go=${BENCH_RUNS_GO:-100} rounds=${BENCH_ROUNDS:-3}
  warmup=20 build_runs=3 build_noop_runs=30 mode_runs_hello=100 mode_runs_go=30
  modes=${BENCH_MODES:-g1 g9 z1 z3 z19 Z1 Z3 Z19 lz4} large=${BENCH_LARGE:-1}
fi
restic_version=v0.18.1

# The launcher obeys GOAMD64 and MGODEBUG at run time, and mgo reads GOAMD64
# as the lowest level to bundle: a value inherited from the caller's shell
# would silently change what we measure.
unset GOAMD64 MGODEBUG MGO_COMPRESS MGO_LAUNCH

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log "building mgo"
(cd "$root" && cargo build --release -q -p mgo)
mgo=$root/target/release/mgo
# The newest copy of each launcher flavour that build.rs wrote.
launcher_file() {
  find "$root/target/release/build" -path "*/out/mgo-launcher$1" -type f -printf '%T@ %p\n' \
    | sort -rn | head -n1 | cut -d' ' -f2-
}
[[ -n $(launcher_file -plain) ]] || die "mgo-launcher-plain not found under target/release/build"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# mgo's up-to-date state, kept apart from the user's.
export MGOCACHE=$work/mgocache

quote() {  # shell-quote words for display: 'a b' rather than printf %q's a\ b
  local w out=()
  for w; do
    if [[ $w =~ ^[[:alnum:]_./=:+-]+$ ]]; then out+=("$w"); else out+=("'${w//\'/\'\\\'\'}'"); fi
  done
  echo "${out[*]}"
}
method=()  # exact hyperfine command lines, printed below the tables
calc() { python3 -c 'import sys; print(format(eval(sys.argv[1]), sys.argv[2]))' "$1" "$2"; }

# starts RUNS CMD...: median start times in seconds of each CMD (a shell
# word each), over $rounds rounds of one hyperfine run each.
starts() {
  local runs=$1; shift
  local round json cmd=()
  for round in $(seq "$rounds"); do
    json=$work/starts.$round.json
    cmd=(hyperfine -N --warmup "$warmup" --runs "$runs" "$@" --export-json "$json")
    # starts runs in a subshell (read < <(starts ...)): the method goes
    # through a file, not the array.
    ((round == 1)) && quote "${cmd[@]}" >>"$work/method.txt"
    "${cmd[@]}" >/dev/null 2>&1
  done
  python3 - "$rounds" "$work" <<'PY'
import json, statistics, sys
rounds, work = int(sys.argv[1]), sys.argv[2]
per = [json.load(open(f"{work}/starts.{r}.json"))["results"] for r in range(1, rounds + 1)]
print(*(statistics.median(p[i]["median"] for p in per) for i in range(len(per[0]))))
PY
}

# peak CMD...: the most memory CMD's process had charged at any moment
# (anonymous memory, memfd pages, page cache it filled), from a memory
# cgroup of its own: v2's memory.peak, else v1's max_usage_in_bytes. Lowest
# of 3 runs, in MB; "n/a" when no cgroup can be made (not root, no memory
# controller).
peak() {
  local cg file best="" i v
  if [[ -w /sys/fs/cgroup/cgroup.subtree_control ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    cg=/sys/fs/cgroup/mgo-bench.$$ file=memory.peak
  elif [[ -d /sys/fs/cgroup/memory ]]; then
    cg=/sys/fs/cgroup/memory/mgo-bench.$$ file=memory.max_usage_in_bytes
  else
    echo n/a; return
  fi
  for i in 1 2 3; do
    mkdir "$cg" 2>/dev/null || { echo n/a; return; }
    v=$(sh -c 'echo $$ > "$1"/cgroup.procs 2>/dev/null || echo $$ > "$1"/tasks; shift; exec "$@"' sh "$cg" "$@" >/dev/null 2>&1; cat "$cg/$file")
    rmdir "$cg"
    [[ -z $best || $v -lt $best ]] && best=$v
  done
  calc "$best / 1e6" .1f
}

# --- 1. Uncompressed --------------------------------------------------------
# bench NAME DIR PKG RUNS GOAL_MS [RUN_ARGS...]: builds PKG from DIR both
# ways, then fills the row variables NAME_* that the table reads.
bench() {
  local name=$1 dir=$2 pkg=$3 runs=$4 goal=$5; shift 5
  local args=("$@") b=$work/$name.bundle v=$work/$name.variant p=$work/$name.plain
  log "$name: building bundle and plain binary (also warms the Go build cache)"
  (cd "$dir" && "$mgo" -o "$b" "$pkg" && GOAMD64=v1 go build -o "$p" "$pkg")
  # The build the launcher starts on this CPU, as a standalone file.
  MGODEBUG=extract "$b" >"$v"
  chmod +x "$v"
  local level
  level=$(go version -m "$v" | awk '$2 ~ /^GOAMD64=/ {sub(/GOAMD64=/, "", $2); print $2}')

  log "$name: start times, $rounds x $runs runs each"
  local a=${args[*]:+ ${args[*]}} direct mapped memfd
  read -r direct mapped memfd < <(starts "$runs" "$v$a" "$b$a" "env MGODEBUG=memfd $b$a")
  # env(1) starts the memfd run: take its own start out.
  local envonly
  read -r envonly < <(starts "$runs" "env $v$a")
  memfd=$(calc "$memfd - ($envonly - $direct)" .6f)

  log "$name: warm-cache build time, $build_runs runs"
  # rm -f: with their outputs in place, both skip the links (see the
  # up-to-date rebuild below); this measures a full warm-cache build.
  local mt gt
  pushd "$dir" >/dev/null
  hyperfine -N --runs "$build_runs" --warmup 1 \
    --prepare "rm -f $work/$name.b2 $work/$name.p2" \
    "$mgo -o $work/$name.b2 $pkg" "env GOAMD64=v1 go build -o $work/$name.p2 $pkg" \
    --export-json "$work/$name.build.json" >/dev/null 2>&1
  method+=("$(quote cd "$PWD") && hyperfine -N --runs $build_runs --warmup 1 --prepare 'rm -f ...' '$mgo -o B $pkg' 'env GOAMD64=v1 go build -o P $pkg'")
  read -r mt gt < <(python3 -c 'import json,sys
print(*(r["median"] for r in json.load(open(sys.argv[1]))["results"]))' "$work/$name.build.json")

  log "$name: up-to-date rebuild, $rounds x $build_noop_runs runs"
  # Both outputs exist and are up to date (the last run above built them):
  # go build reads the build ID and only touches the file; mgo lets go
  # decide for the lowest level and touches the bundle.
  local nm ng
  read -r nm ng < <(starts "$build_noop_runs" "$mgo -o $work/$name.b2 $pkg" "go build -o $work/$name.p2 $pkg")
  popd >/dev/null

  local overhead met
  overhead=$(calc "($mapped - $direct) * 1e3" '+.2f')
  met=$(calc "'met' if $overhead <= $goal else 'NOT met'" s)
  eval "${name}_level=\$level"
  eval "${name}_sd=$(calc "$direct * 1e3" .2f) ${name}_sm=$(calc "$mapped * 1e3" .2f) ${name}_sf=$(calc "$memfd * 1e3" .2f)"
  eval "${name}_om='$overhead (goal ≤ +$goal, $met)' ${name}_of=$(calc "($memfd - $direct) * 1e3" '+.2f')"
  eval "${name}_zr=$(calc "$(stat -c %s "$b") / $(stat -c %s "$p")" .2f)×"
  eval "${name}_bm=$(calc "$mt" .2f) ${name}_bg=$(calc "$gt" .2f)"
  local ratio noop_met
  ratio=$(calc "$nm / $ng" .2f)
  noop_met=$(calc "'met' if $ratio <= 1.5 else 'NOT met'" s)
  eval "${name}_nm=$(calc "$nm * 1e3" .1f) ${name}_ng=$(calc "$ng * 1e3" .1f)"
  eval "${name}_nr='${ratio}× (goal ≤ 1.5×, $noop_met)'"
}

bench hello "$root/examples/hello" . "$runs_hello" 0.25
bench cmdgo "$work" cmd/go "$runs_go" 0.8 env GOROOT

row() {  # row LABEL VAR_SUFFIX
  local h=hello_$2 g=cmdgo_$2
  echo "| $1 | ${!h} | ${!g} |"
}
echo "## mgo benchmark$( ((quick)) && echo ' (--quick: NOT for publishing)')"
echo
echo "### Uncompressed bundles"
echo
echo "| | examples/hello | cmd/go (\`env GOROOT\`) |"
echo "|---|---:|---:|"
row "level this CPU starts" level
row "start, the build run directly (median ms)" sd
row "start, bundle mapped (median ms)" sm
row "start, bundle through a memfd (median ms)" sf
row "launch overhead, mapped (ms)" om
row "launch overhead, memfd (ms)" of
row "size, bundle / plain \`go build\`" zr
row "build, \`mgo\` warm cache (median s)" bm
row "build, \`go build\` warm cache (median s)" bg
row "up-to-date rebuild, \`mgo\` (median ms)" nm
row "up-to-date rebuild, \`go build\` (median ms)" ng
row "up-to-date rebuild, mgo / go build" nr
echo

# --- 2. Running instances ---------------------------------------------------
# The probe test program waits for stdin to close once it says "ready".
probe_dir=$root/crates/mgo/tests/testdata/probe
log "memory of 20 running instances"
(cd "$probe_dir" && "$mgo" -o "$work/probe.bundle" . )
MGODEBUG=extract "$work/probe.bundle" > "$work/probe.variant"
chmod +x "$work/probe.variant"
instances() {  # instances CMD...: total Pss and Pss_Shmem (kB) of 20 running CMDs
  python3 - "$@" <<'PY'
import subprocess, sys
procs = [subprocess.Popen(sys.argv[1:] + ["sleep"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(20)]
for p in procs:
    assert p.stdout.readline() == b"ready\n"
pss = shmem = 0
for p in procs:
    for line in open(f"/proc/{p.pid}/smaps_rollup"):
        if line.startswith("Pss:"): pss += int(line.split()[1])
        if line.startswith("Pss_Shmem:"): shmem += int(line.split()[1])
for p in procs:
    p.stdin.close(); p.wait()
print(pss, shmem)
PY
}
read -r ipd isd < <(instances "$work/probe.variant")
read -r ipm ism < <(instances "$work/probe.bundle")
read -r ipf isf < <(MGODEBUG=memfd instances "$work/probe.bundle")
echo "### 20 running instances (the probe test program, 5.7 MB a build)"
echo
echo "| | total Pss (MB) | of it shared memory (MB) |"
echo "|---|---:|---:|"
echo "| the build run directly | $(calc "$ipd / 1e3" .1f) | $(calc "$isd / 1e3" .1f) |"
echo "| bundle, mapped | $(calc "$ipm / 1e3" .1f) | $(calc "$ism / 1e3" .1f) |"
echo "| bundle, through a memfd | $(calc "$ipf / 1e3" .1f) | $(calc "$isf / 1e3" .1f) |"
echo

# --- 3. MGO_COMPRESS modes --------------------------------------------------
# extract_ms BUNDLE: median of 5 runs of MGODEBUG=extract BUNDLE > /dev/null.
extract_ms() {
  python3 - "$1" <<'PY'
import os, statistics, subprocess, sys, time
env = dict(os.environ, MGODEBUG="extract")
times = []
for _ in range(5):
    t = time.perf_counter()
    subprocess.run([sys.argv[1]], env=env, stdout=subprocess.DEVNULL, check=True)
    times.append(time.perf_counter() - t)
print(format(statistics.median(times) * 1e3, ".0f"))
PY
}

# mode_rows NAME DIR PKG PLAIN RUNS [RUN_ARGS...]: one table row per mode.
mode_rows() {
  local name=$1 dir=$2 pkg=$3 plain=$4 runs=$5; shift 5
  local args=("$@") mode b t0 t1 direct mapped memfd file envonly
  local a=${args[*]:+ ${args[*]}} v=$work/$name.variant psize
  psize=$(stat -c %s "$plain")
  local direct_peak; direct_peak=$(peak "$v" "${args[@]}")
  read -r envonly direct < <(starts "$runs" "env $v$a" "$v$a")
  for mode in $modes; do
    b=$work/$name.mode.$mode
    log "$name: MGO_COMPRESS=$mode"
    t0=$(date +%s.%N)
    (cd "$dir" && MGO_COMPRESS=$mode "$mgo" -o "$b" "$pkg")
    t1=$(date +%s.%N)
    # The file start's warmup runs write the cache file: what is measured
    # is every later start, which maps it.
    read -r direct mapped memfd file < <(starts "$runs" "$v$a" "$b$a" "env MGODEBUG=memfd $b$a" \
      "env MGODEBUG=file MGOCACHE=$work/cache $b$a")
    memfd=$(calc "$memfd - ($envonly - $direct)" .6f)
    file=$(calc "$file - ($envonly - $direct)" .6f)
    echo "| $name | $mode | $(calc "$(stat -c %s "$b") / $psize" .3f)× | $(calc "($mapped - $direct) * 1e3" +.2f) | $(calc "($memfd - $direct) * 1e3" +.2f) | $(calc "($file - $direct) * 1e3" +.2f) | $(peak "$b" "${args[@]}") (direct $direct_peak) | $(calc "$t1 - $t0" .1f) | $(extract_ms "$b") |"
    rm -f "$b"
  done
}

echo "### MGO_COMPRESS modes"
echo
echo "Size relative to one plain \`go build\` (GOAMD64=v1). Start overhead: median"
echo "start of the bundle minus that of the build it starts, run directly, mapped,"
echo "through a memfd, and from its file in the cache (MGODEBUG=file; the"
echo "warmup runs write the file, the measured ones map it). Peak memory at start, mapped: cgroup peak of the whole"
echo "run (MB). Build: one warm-cache mgo run (s). Extract: median of 5 runs of"
echo "MGODEBUG=extract (ms), which decodes the build and deflates its DWARF again."
echo
echo "| program | MGO_COMPRESS | size / plain | start overhead mapped (ms) | start overhead memfd (ms) | start overhead file (ms) | peak memory (MB) | build (s) | extract (ms) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
mode_rows hello "$root/examples/hello" . "$work/hello.plain" "$mode_runs_hello"
mode_rows cmdgo "$work" cmd/go "$work/cmdgo.plain" "$mode_runs_go" env GOROOT
echo
# --- 4. A large program ------------------------------------------------------
# restic (a 62 MB build, 45 MB of it loadable), from the module proxy at a
# pinned version: does a start cost more as the program grows?
if ((large)); then
  rdir=$work/restic rb=$work/restic.bundle rv=$work/restic.variant
  log "restic $restic_version: module proxy, then bundle"
  mkdir -p "$rdir"
  (cd "$rdir" && go mod init example.com/bench-restic >/dev/null 2>&1 \
    && go get "github.com/restic/restic/cmd/restic@$restic_version" >/dev/null 2>&1 \
    && "$mgo" -o "$rb" github.com/restic/restic/cmd/restic) \
    || die "cannot build restic $restic_version through the module proxy (BENCH_LARGE=0 skips it)"
  MGODEBUG=extract "$rb" >"$rv"
  chmod +x "$rv"
  log "restic: start times and peak memory"
  # Warmup runs make the default start's one check and the file start's
  # cache file: what is measured is every later start.
  read -r renv rdirect rmapped rfile < <(starts "$runs_go" "env $rv version" "$rv version" "$rb version" \
    "env MGODEBUG=file MGOCACHE=$work/cache $rb version")
  rfile=$(calc "$rfile - ($renv - $rdirect)" .6f)
  # maxrss CMD...: the lowest peak resident memory (KiB) of 5 runs.
  maxrss() {
    python3 - "$@" <<'PY'
import os, subprocess, sys
best = None
for _ in range(5):
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    _, _, usage = os.wait4(p.pid, 0)
    best = usage.ru_maxrss if best is None else min(best, usage.ru_maxrss)
print(best)
PY
  }
  rpd=$(maxrss "$rv" version) rpm=$(maxrss "$rb" version)
  rpf=$(MGODEBUG=file MGOCACHE=$work/cache maxrss "$rb" version)
  echo "### A large program: restic $restic_version (\`restic version\`)"
  echo
  echo "| | start (median ms) | overhead (ms) | peak resident memory (MiB) | over the build run directly (MiB) |"
  echo "|---|---:|---:|---:|---:|"
  echo "| the build run directly | $(calc "$rdirect * 1e3" .2f) | | $(calc "$rpd / 1024" .1f) | |"
  echo "| bundle, mapped (the default) | $(calc "$rmapped * 1e3" .2f) | $(calc "($rmapped - $rdirect) * 1e3" +.2f) | $(calc "$rpm / 1024" .1f) | $(calc "($rpm - $rpd) / 1024" +.2f) |"
  echo "| bundle, file start (MGODEBUG=file) | $(calc "$rfile * 1e3" .2f) | $(calc "($rfile - $rdirect) * 1e3" +.2f) | $(calc "$rpf / 1024" .1f) | $(calc "($rpf - $rpd) / 1024" +.2f) |"
  echo
  echo "Goal: at most +0.3 ms and +0.5 MiB over the build run directly."
  echo
fi

echo "Launchers (bytes):"
while read -r flavour _; do
  [[ -z $flavour || $flavour == \#* ]] && continue
  file=-${flavour//+/-}
  echo "- mgo-launcher$file: $(stat -c %s "$(launcher_file "$file")")"
done < "$root/crates/launcher/flavours.txt"
echo

echo "### Method"
echo
echo "Start runs: hello $runs_hello, cmd/go $runs_go, per mode $mode_runs_hello and"
echo "$mode_runs_go; warmup $warmup; medians of $rounds rounds. The memfd rows start the"
echo "bundle through env(1) (to set MGODEBUG=memfd) and subtract env's own start,"
echo "measured the same way. The build run directly is \`MGODEBUG=extract BUNDLE > FILE\`."
echo "Commands of the first round (temporary directory since removed):"
echo
echo '```'
cat "$work/method.txt"
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
