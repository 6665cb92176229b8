#!/usr/bin/env bash
# The GPU checks in one call: the hms_b1 headline study with --gpus-per-trial auto, auto against 1 on usps_cnn,
# and the memory-release test. Every step has its own time cap, so one slow step cannot take the others' time,
# and a step that fails or runs out of time is recorded and the next one runs. Figures go to gpu_checks.json and
# a short gpu_checks.txt in the output folder (with the GPU samples and, per step that did not succeed, the tail
# of its log: at most 7 files).
#
#   bash benchmarks/gpu_checks.sh [--dry-run] [--out DIR]
#
# DIR defaults to $OUT, else a new temporary folder. --dry-run runs the same steps cut to the least that still
# exercises each one, on the CPU (a logical GPU declared to Ray; `auto` needs a CUDA device and says so).
# On one H200 the caps add up to under 8 minutes.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

DRY_RUN=0
OUT_DIR="${OUT:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --out)
            [ $# -ge 2 ] || { echo "error: --out needs a folder" >&2; exit 2; }
            OUT_DIR="$2"; shift ;;
        *) echo "error: unknown argument '$1'; accepted: --dry-run, --out DIR" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$OUT_DIR" ] || OUT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gpu-checks-XXXXXX")
mkdir -p "$OUT_DIR" || { echo "error: cannot create the output folder '$OUT_DIR'" >&2; exit 2; }
OUT_DIR=$(cd "$OUT_DIR" && pwd)

# The README's install puts the project in ./.venv; an environment already active is kept.
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$ROOT/.venv/bin/activate" ]; then
    # shellcheck disable=SC1091
    . "$ROOT/.venv/bin/activate"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # Ray's workers import this checkout's tuner too
PY=${PYTHON:-python}

# Results, MLflow store and full logs stay out of the output folder: only the figures travel back.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-checks-work-XXXXXX")
RESULTS="$WORK/results"
STEPS="$WORK/steps.tsv"
SAMPLES="$OUT_DIR/gpu_samples.csv"
: > "$STEPS"

if [ "$DRY_RUN" = 1 ]; then
    MODE=dry_run
    # Caps and budget only guard against a hang: on a busy 2-core machine the first trial can wait minutes. The
    # usps_cnn searches end when their two trials do; the figures are not the point of a dry run, the paths are.
    HMS_CAP=900; USPS_CAP=600; MEMORY_CAP=300; USPS_BUDGET=300
    "$PY" benchmarks/gpu_checks.py hms-data "$WORK/hms-data" || echo "hms-data failed" >&2
    HMS_ARGS=(--data "$WORK/hms-data" --trials 2 --max-epochs 2 --set image_scale=0.0625 --verify-top 0
              --no-report-baseline --gpus-per-trial 0.5 --num-gpus 1)
    USPS_ARGS=(--trials 2 --max-epochs 1 --num-gpus 1)
    GPU_TESTS=(tests/test_gpu_memory.py)  # skipped without CUDA; collecting the whole suite only costs time here
else
    MODE=device
    # 295 + 45 + 45 + 50 s, and 10 s of grace each: under 8 minutes with the figures written. A usps_cnn study
    # cut by its cap after its search still has its figures (they come from the search's own files).
    HMS_CAP=295; USPS_CAP=45; MEMORY_CAP=50; USPS_BUDGET=25
    HMS_ARGS=(--trials 100 --gpus-per-trial auto --set image_scale=1.0)
    USPS_ARGS=(--trials 1000)  # more than the time budget lets run: the budget ends the search
    GPU_TESTS=()  # every test marked gpu
fi
COMMON=(--results-dir "$RESULTS" --no-dashboard --progress-every 60)

# run_step NAME CAP COMMAND...: runs COMMAND under its own time cap (SIGINT first: tuner records an interrupted
# study and stops Ray; SIGKILL 10 s later), logs to WORK/NAME.log and appends "name rc start end cap" to STEPS.
run_step() {
    local name=$1 cap=$2 start end rc
    shift 2
    echo "== $name (cap ${cap}s): $*"
    start=$(date +%s.%N)
    timeout --signal=INT --kill-after=10 "$cap" "$@" > "$WORK/$name.log" 2>&1 &
    local pid=$!
    wait "$pid"
    rc=$?
    kill -KILL -- "-$pid" 2> /dev/null  # whatever the step left in its process group (timeout leads the group)
    end=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$start" "$end" "$cap" >> "$STEPS"
    echo "   rc=$rc, $(tail -n 1 "$WORK/$name.log" | cut -c1-160)"
}

SAMPLER_PID=""
if [ "$MODE" = device ] && command -v nvidia-smi > /dev/null; then
    echo "timestamp, utilization.gpu [%], memory.used [MiB], memory.total [MiB], name" > "$SAMPLES"
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,memory.total,name \
        --format=csv,noheader,nounits -l 1 >> "$SAMPLES" 2> "$WORK/sampler.err" &
    SAMPLER_PID=$!
elif [ "$MODE" = device ]; then
    echo "nvidia-smi not found: no GPU samples" | tee "$WORK/sampler.note"
else
    echo "dry run: the nvidia-smi sampler is skipped" | tee "$WORK/sampler.note"
fi

run_step hms_b1 "$HMS_CAP" "$PY" -m tuner run hms_b1 --name hms "${HMS_ARGS[@]}" "${COMMON[@]}"
for share in auto 1; do
    run_step "usps_$share" "$USPS_CAP" "$PY" -m tuner run usps_cnn --name "usps-$share" --gpus-per-trial "$share" \
        --time-budget "$USPS_BUDGET" --verify-top 0 --no-report-baseline "${USPS_ARGS[@]}" "${COMMON[@]}"
done
run_step gpu_memory "$MEMORY_CAP" "$PY" -m pytest -q -s -m gpu -p no:cacheprovider ${GPU_TESTS[@]+"${GPU_TESTS[@]}"}

[ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2> /dev/null && wait "$SAMPLER_PID" 2> /dev/null

"$PY" benchmarks/gpu_checks.py report --mode "$MODE" --work "$WORK" --out "$OUT_DIR" --usps-budget "$USPS_BUDGET"
rc=$?
echo "figures: $OUT_DIR/gpu_checks.json, summary: $OUT_DIR/gpu_checks.txt (full logs: $WORK)"
exit $rc
