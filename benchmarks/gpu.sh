#!/usr/bin/env bash
# The whole GPU benchmark in one call, on a machine with no network (CUDA, Python 3.12 with torch, numpy,
# opencv, typer, rich, pyyaml already there): installs the wheels carried in .whl/, records nvidia-smi,
# checks CUDA scans against CPU scans of the same files (gpu_parity.py), generates 1080p H.264 clips, runs
# bench_scan.py with the full-size models (and bench_decode.py where the repo has it), and writes the tables as markdown into OUTDIR (argument, else $OUT, else benchmarks/out).
# Planned to end in about 5 to 8 minutes on one H100 (an estimate: not yet run on a GPU): about 2,240 GFLOP
# per frame for the ADM forward and torch.compile's warm-up of 1 to 3 minutes (the GOP-aware decoder gives
# about 25-40 exact uniform-16 frames/s per core on 1080p H.264, so 16 cores should keep up with the model);
# the reference loop scores the same frames as the engine's rows, one at a time (1,328 frames with the
# defaults: about half a minute at an assumed 50 frames/s); each step is stopped at its timeout so the whole
# stays under 10 minutes.
#
# Fill .whl/ first, from the repo root, on a machine with network (guided-diffusion-sdk is a source
# release, so pip builds its pure-Python wheel; its blobfile need is only for modules streamdet never imports):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     av==18.1.0 pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5
#   python3 -m pip wheel --no-deps -w .whl guided-diffusion-sdk==1.0.0
#
# Usage: benchmarks/gpu.sh [OUTDIR]
# Environment:
#   BENCH_CONFIG=tiny        CPU check: the tiny config, no wheels installed (default: default, with wheels)
#   BENCH_SCAN_ARGS="..."    extra bench_scan.py options, e.g. "--videos 4 --frames 90 --backends torch" to go faster
#   BENCH_SCAN_TIMEOUT=450   seconds before bench_scan.py is stopped; BENCH_DECODE_TIMEOUT=120 likewise (0 skips it),
#                            BENCH_PARITY_TIMEOUT=120 for gpu_parity.py (CUDA scans against CPU scans, tiny models)
#   BENCH_DECODE_ARGS="..."  extra bench_decode.py options, e.g. "--codecs libx264 --gops 30,250 --repeat 1"
#   PYTHON=python3           the interpreter
set -uo pipefail

cd "$(dirname "$0")/.."
out="${1:-${OUT:-benchmarks/out}}"
config="${BENCH_CONFIG:-default}"
python="${PYTHON:-python3}"
media="${TMPDIR:-/tmp}/streamdet-bench-media"
mkdir -p "$out" "$media" || exit 1

if [ "$config" != tiny ]; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "gpu.sh: .whl/ holds no wheels: fill it as the comment at the top of benchmarks/gpu.sh says" >&2
        exit 2
    fi
    site="${TMPDIR:-/tmp}/streamdet-site"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl || {
        echo "gpu.sh: installing the wheels in .whl/ failed (see above)" >&2
        exit 1
    }
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ "$config" != tiny ] && ! "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    echo "gpu.sh: $python sees no CUDA GPU: the full-size models would take hours on the CPU (BENCH_CONFIG=tiny runs the CPU check)" >&2
    exit 2
fi

# run NAME TIMEOUT COMMAND...: stdout to OUTDIR/NAME.md (atomically), stderr to OUTDIR/NAME.log; prints a status line.
run() {
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" >"$out/$name.md.part" 2>"$out/$name.log"
    local rc=$?
    mv "$out/$name.md.part" "$out/$name.md"
    case $rc in
        0) echo "$name: ok" ;;
        124) echo "$name: stopped after $limit s (raise its timeout or scale it down); its tables are incomplete" ;;
        *) echo "$name: failed with exit status $rc; the end of $name.log:" && tail -n 5 "$out/$name.log" ;;
    esac
    return $rc
}

status=0
{
    echo "# streamdet GPU benchmark"
    echo
    echo "Date $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git describe --always --dirty 2>/dev/null || echo unknown), config $config, command: benchmarks/gpu.sh"
    echo
    echo '```'
    if command -v nvidia-smi >/dev/null; then nvidia-smi 2>&1; else echo "nvidia-smi: not found"; fi
    "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")'
    echo "cores: $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
    echo '```'
} >"$out/gpu-bench.md.part"

if [ "$config" != tiny ]; then  # CUDA scans against CPU fp32 scans of the same files (tiny models: about a minute)
    run gpu_parity "${BENCH_PARITY_TIMEOUT:-120}" "$python" benchmarks/gpu_parity.py || status=1
fi
# shellcheck disable=SC2086  # BENCH_SCAN_ARGS is a list of options
run bench_scan "${BENCH_SCAN_TIMEOUT:-450}" "$python" benchmarks/bench_scan.py --config "$config" --media "$media" ${BENCH_SCAN_ARGS:-} || status=1
if [ -f benchmarks/bench_decode.py ] && [ "${BENCH_DECODE_TIMEOUT:-120}" != 0 ]; then
    # shellcheck disable=SC2086  # BENCH_DECODE_ARGS is a list of options
    run bench_decode "${BENCH_DECODE_TIMEOUT:-120}" "$python" benchmarks/bench_decode.py ${BENCH_DECODE_ARGS:-} || status=1
fi

for name in gpu_parity bench_scan bench_decode; do
    if [ -f "$out/$name.md" ]; then
        printf '\n## %s\n\n' "$name"
        cat "$out/$name.md"
    fi
done >>"$out/gpu-bench.md.part"
mv "$out/gpu-bench.md.part" "$out/gpu-bench.md"
echo "tables: $out/gpu-bench.md"
exit $status
