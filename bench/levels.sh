#!/usr/bin/env bash
# What the higher levels gain on real code: fetches modules through the Go
# module proxy at pinned versions, runs a selection of their own benchmarks
# with `mgo test -bench` (the levels round by round, benchstat's statistics),
# and prints one Markdown row per package with the command that reproduces
# it, after a line that says which machine ran it.
#
#   bench/levels.sh            10 rounds of -benchtime 200ms (about 11 minutes
#                              on 2 cores)
#   bench/levels.sh --quick    2 rounds of -benchtime 1x, only to smoke-test
#
# The selection is small on purpose (a few benchmarks per package, short
# runs), so that the script ends in minutes; what it prints holds for those
# benchmarks on this machine only. The raw output (go's benchmark format,
# for `benchstat -col goamd64 FILE`) and mgo's full summaries are kept in
# $LEVELS_OUT (default: a temporary directory, printed at the end).
#
# MGO names the mgo to run (default: one built with cargo --release).
set -euo pipefail

rounds=10
benchtime=200ms
case "${1:-}" in
  "") ;;
  --quick) rounds=2; benchtime=1x ;;
  -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

die() { echo "levels.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

command -v go >/dev/null || die "go not found in PATH"
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${MGO:-}" ]]; then
  command -v cargo >/dev/null || die "cargo not found in PATH; or set MGO to an mgo binary"
  log "building mgo (cargo build --release -p mgo)"
  cargo build --release --quiet -p mgo --manifest-path "$root/Cargo.toml"
  MGO="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/mgo"
fi
[[ -x "$MGO" ]] || die "$MGO is not an executable"

out=${LEVELS_OUT:-$(mktemp -d)}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The modules, pinned; -t brings their tests' own dependencies.
roaring=github.com/RoaringBitmap/roaring/v2@v2.30.0
compress=github.com/klauspost/compress@v1.20.5
cd "$work"
cat > go.mod <<'MOD'
module example.com/levels

go 1.22
MOD
log "fetching $roaring and $compress through the module proxy"
go get -t "$roaring" "${compress%@*}/huff0@${compress#*@}" "${compress%@*}/zstd@${compress#*@}" >&2

# name # package # benchmark pattern # what it exercises
cases=(
  "roaring#github.com/RoaringBitmap/roaring/v2#^Benchmark(CountRoaring|CountBitset|IntersectionCardinalityRoaring|UnionRoaring|UnionBitset|Xor)\$#bitmaps, popcount"
  "math#math#^Benchmark(Acos|Asin|Atan|Erfinv|Exp|Log|Sin|Cos|Tan|Sinh|FMA|PowFrac)\$#floating point, FMA from v3"
  "huff0#github.com/klauspost/compress/huff0#^Benchmark(Decompress4XTable|Compress4XReuseNone)\$#Huffman coding, bit twiddling"
  "zstd#github.com/klauspost/compress/zstd#^Benchmark(Decoder_DecodeAll|Encoder_EncodeAllTwain|Encoder_EncodeAllXML)\$#zstd"
  "json#encoding/json#^Benchmark(CodeDecoder|CodeEncoder|CodeUnmarshal|CodeMarshal)\$#a typical case"
)

version_of() {
  case "$1" in
    github.com/RoaringBitmap/*) echo " ${roaring#*@}" ;;
    github.com/klauspost/*) echo " ${compress#*@}" ;;
    *) echo " ($(go env GOVERSION))" ;;
  esac
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "Machine: $cpu, $(nproc) CPUs, $(uname -r); $(go version | cut -d' ' -f3); $rounds rounds of -benchtime $benchtime; $(date -u +%Y-%m-%d)."
echo
echo "| Package | Benchmarks | Verdict per level (against the lowest) | Command |"
echo "|---------|-----------:|----------------------------------------|---------|"
for entry in "${cases[@]}"; do
  IFS='#' read -r name package pattern what <<<"$entry"
  log "$name: $package"
  command=(mgo test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$rounds" "$package")
  "$MGO" "${command[@]:1}" >"$out/$name.txt" 2>"$out/$name.summary" ||
    { cat "$out/$name.summary" >&2; die "$name failed"; }
  count=$(grep -c '^Benchmark' "$out/$name.txt" || true)
  levels=$(grep -c '^goamd64: ' "$out/$name.txt" || true)
  per_run=$(( count * 1 / (levels > 0 ? levels : 1) ))
  verdicts=$(grep -E '^v[0-9]: ' "$out/$name.summary" | paste -sd';' - | sed 's/;/; /g')
  # The command as a shell reads it; a pipe in a Markdown table cell is
  # written \|.
  shown="mgo test -run '^\$' -bench '$pattern' -benchtime $benchtime -count $rounds $package"
  printf '| `%s`%s (%s) | %d | %s | `%s` |\n' "$package" "$(version_of "$package")" "$what" \
    "$per_run" "${verdicts:-none}" "${shown//|/\\|}"
done
echo
log "raw output and summaries: $out (benchstat -col goamd64 $out/NAME.txt)"
