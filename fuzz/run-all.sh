#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (first argument, default 1800),
# one after the other; then minimises each working corpus with
# `cargo fuzz cmin`, distils the kept corpus, and prints per target: runs,
# exec/s, coverage, corpus sizes and crashes found.
#
#   fuzz/run-all.sh                    # 30 minutes per target
#   fuzz/run-all.sh 60                 # a minute per target
#   SANITIZER=none fuzz/run-all.sh 60  # without AddressSanitizer (faster)
#   TARGETS="cursor jwt_header" fuzz/run-all.sh 600
#   KEEP=50 fuzz/run-all.sh            # kept corpus files per target
#   fuzz/run-all.sh 0                  # no fuzzing: minimise and distil only
#
# Corpora: each run fuzzes into the working corpus
# fuzz/artifacts/corpus/<target>/ (not in git; it grows from run to run),
# seeded by the kept corpus fuzz/corpus/<target>/ and by
# fuzz/regressions/<target>/. After the run the working corpus is
# minimised with `cargo fuzz cmin`, and the kept corpus (what CI replays)
# is distilled from both: the hand-written `seed-*` inputs, then inputs of
# at most 2 KiB that cover the most edges (greedy set cover over
# libFuzzer's merge control file) up to KEEP files in all.
#
# The toolchain is stable (rust-toolchain.toml); cargo fuzz needs nightly
# flags, hence RUSTC_BOOTSTRAP=1. libFuzzer stops a target at its first
# crash; the input is in fuzz/artifacts/<target>/. Once the bug is fixed,
# copy it into fuzz/regressions/<target>/ so that
# `cargo nextest run -p sync-fuzz` replays it.
set -u -o pipefail

seconds="${1:-1800}"
sanitizer="${SANITIZER:-address}"
keep="${KEEP:-50}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1
targets="${TARGETS:-ws_client_message sync_request cursor jwt_header patch_apply text_merge3 conflict_resolve time_parse}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
logs="$here/artifacts/logs"
mkdir -p "$logs"

# Every target built once first, so that the timed runs do not include it.
cargo fuzz build --sanitizer "$sanitizer" || exit 1

count_crashes() {
    find "$here/artifacts/$1" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) \
        2>/dev/null | wc -l
}

# distil <control file> <kept corpus dir> <limit>: the greedy set cover.
distil() {
    python3 - "$@" <<'PY'
import hashlib, os, sys
control, kept, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(control).read().split("\n")
count = int(lines[0])
paths = lines[2:2 + count]
features, sizes = {}, {}
for line in lines[2 + count:]:
    parts = line.split()
    if len(parts) >= 2 and parts[0] == "STARTED":
        sizes[int(parts[1])] = int(parts[2])
    elif len(parts) >= 2 and parts[0] == "FT":
        features[int(parts[1])] = set(map(int, parts[2:]))
is_seed = lambda i: os.path.dirname(os.path.abspath(paths[i])) == os.path.abspath(kept) \
    and os.path.basename(paths[i]).startswith("seed-")
covered, picked = set(), []
seeds = [i for i in features if is_seed(i)]
for i in seeds:
    covered |= features[i]
limit = max(0, limit - len(seeds))
candidates = {i for i in features if not is_seed(i) and sizes.get(i, 1 << 30) <= 2048}
while len(picked) < limit and candidates:
    best = max(candidates, key=lambda i: (len(features[i] - covered), -sizes[i]))
    if not features[best] - covered:
        break
    picked.append(best)
    covered |= features[best]
    candidates.discard(best)
data = [open(paths[i], "rb").read() for i in picked]
for name in os.listdir(kept):
    if not name.startswith("seed-"):
        os.remove(os.path.join(kept, name))
for blob in data:
    with open(os.path.join(kept, hashlib.sha1(blob).hexdigest()), "wb") as out:
        out.write(blob)
print(f"kept {len(picked)} inputs covering {len(covered)} features")
PY
}

summary=()
for target in $targets; do
    work="artifacts/corpus/$target"
    mkdir -p "$work" "corpus/$target"
    # New inputs go to the first directory; the others only seed the run.
    dirs=("$work" "corpus/$target")
    if [ -d "regressions/$target" ]; then dirs+=("regressions/$target"); fi
    before="$(count_crashes "$target")"
    log="$logs/$target.log"
    echo "== $target: ${seconds} s (log: $log)"
    status=0
    if [ "$seconds" -gt 0 ]; then
        # -timeout: an input slower than 10 s counts as a hang.
        cargo fuzz run --sanitizer "$sanitizer" "$target" "${dirs[@]}" -- \
            -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1
        status=$?
    else
        : >"$log"
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
    speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
    cov="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)"
    echo "== $target: minimising the working corpus"
    cargo fuzz cmin --sanitizer "$sanitizer" "$target" "$work" >>"$log" 2>&1
    echo "== $target: distilling the kept corpus"
    control="$(mktemp)" && rm -f "$control"
    scratch="$(mktemp -d)"
    "target/$triple/release/$target" -merge=1 -set_cover_merge=1 -use_counters=0 \
        -merge_control_file="$control" "$scratch" "$work" "corpus/$target" >>"$log" 2>&1
    distil "$control" "corpus/$target" "$keep" | tee -a "$log"
    rm -rf "$control" "$scratch"
    work_files="$(find "$work" -type f | wc -l)"
    kept_files="$(find "corpus/$target" -type f | wc -l)"
    kept_kib="$(find "corpus/$target" -type f -printf '%s\n' | awk '{ s += $1 } END { print int((s + 1023) / 1024) }')"
    crashes=$(( $(count_crashes "$target") - before ))
    line="$(printf '%-18s runs %9s  exec/s %6s  %-21s work %5s files  kept %3s files %4s KiB  crashes %s (exit %s)' \
        "$target" "${runs:-?}" "${speed:-?}" "${cov:-cov: ?}" "$work_files" "$kept_files" "$kept_kib" "$crashes" "$status")"
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary (${seconds} s per target, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
echo "crash inputs, if any: $here/artifacts/<target>/; logs: $logs/"
