#!/usr/bin/env bash
# The GPU part of issue #17 in one command, for a lent GPU machine (see DEVELOPERS.md and
# benchmarks/RESULTS.md). From the repository root, with the wheels the image lacks in .whl/
# (bitsandbytes, peft, platformdirs, tomli_w; fetch them with `bash benchmarks/gpu_check.sh --wheels`):
#
#   bash benchmarks/gpu_check.sh [OUT]          # on the GPU: about 9 minutes
#   bash benchmarks/gpu_check.sh --rehearse OUT # on a CPU, same code paths, shrunk models (PY=python to pick one)
#
# Preference tuning (issue #20) needs TRL and datasets, and datasets needs pyarrow (55 MB): it does not travel
# with bitsandbytes (43 MB) in the 64 MiB a device call carries. So its cases run in a call of their own, on a
# 16-bit base: `bash benchmarks/gpu_check.sh --wheels-preference` fills .whl/ with TRL, datasets and theirs
# (no bitsandbytes), then `bash benchmarks/gpu_check.sh --preference OUT` (about 2 minutes) measures only the
# DPO and ORPO cases this machine can run (gpu_calibrate.py --methods dpo,orpo).
#
# FSDP (issue #21): `bash benchmarks/gpu_check.sh --fsdp OUT` (about 2 minutes, the --wheels wheels) runs
# benchmarks/fsdp_gpu_check.py with one process per GPU found.
#
# 1. installs the carried wheels into /tmp/site; 2. the planner calibration (gpu_calibrate.py: 19
# cases, 5 architectures, random weights built on the GPU); 3. peak memory and tokens/s of the
# studio against a plain QLoRA script, Llama 3 8B's architecture, 8192 tokens (peak_vs_plain.py).
# Unsloth is not run: its wheels and theirs (unsloth_zoo, trl, xformers, ...) do not fit in the
# 64 MiB that travels with bitsandbytes. Everything lands in OUT as it is measured.
set -u
if [ "${1:-}" = "--wheels" ]; then
  mkdir -p .whl
  for p in bitsandbytes==0.50.2 peft==0.21.2 platformdirs tomli_w; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .whl "$p"
  done
  exit
fi
if [ "${1:-}" = "--wheels-preference" ]; then
  rm -rf .whl && mkdir -p .whl
  for p in trl==1.16.0 datasets==5.2.0 pyarrow xxhash dill multiprocess peft==0.21.2 platformdirs tomli_w; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .whl "$p"
  done
  exit
fi
if [ "${1:-}" = "--fsdp" ]; then  # issue #21: the FSDP-QLoRA path, one process per GPU (fsdp_gpu_check.py)
  OUT=${2:-/tmp/gpu-check}; mkdir -p "$OUT"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
  N=$(nvidia-smi -L | wc -l)
  python3 -m accelerate.commands.launch --num_processes "$N" $(python3 benchmarks/fsdp_gpu_check.py --flags) \
    benchmarks/fsdp_gpu_check.py "$OUT" 2>&1 | tail -40 | tee "$OUT/fsdp-log.txt"
  exit
fi
METHODS=sft,dpo,orpo
if [ "${1:-}" = "--preference" ]; then METHODS=dpo,orpo; shift; fi
REHEARSE=0
if [ "${1:-}" = "--rehearse" ]; then REHEARSE=1; shift; fi
OUT=${1:-${OUT:-/tmp/gpu-check}}
PY=${PY:-python3}
mkdir -p "$OUT"
START=$(date +%s)
log() { echo "[$(( $(date +%s) - START )) s] $*" | tee -a "$OUT/log.txt"; }

if [ $REHEARSE = 0 ]; then
  log "installing carried wheels: $(ls .whl 2>/dev/null | tr '\n' ' ')"
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/log.txt"
else
  export PYTHONPATH=$PWD
fi
# the random models go to RAM where there is room for Llama 3 8B's 16 GB, else to disk
WORK=/tmp
if [ "$(df --output=avail -B1G /dev/shm 2>/dev/null | tail -1 | tr -d ' ')" -ge 40 ] 2>/dev/null; then WORK=/dev/shm; fi
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TMPDIR=$WORK
log "random models in $WORK; $(nproc) CPUs; $(free -g | awk '/Mem/ {print $2}') GB RAM"
$PY -c "import sys, torch, transformers, peft, bitsandbytes, accelerate; print('python', sys.version.split()[0], \
'torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, \
'bitsandbytes', bitsandbytes.__version__, 'accelerate', accelerate.__version__)" 2>&1 | tee -a "$OUT/log.txt"

log "calibration"
if [ $REHEARSE = 0 ]; then
  timeout 270 $PY benchmarks/gpu_calibrate.py --out "$OUT" --work "$WORK/studio-calibration" --budget-s 200 \
    --methods $METHODS 2>&1 | tee "$OUT/calibration.log"
else
  timeout 900 $PY benchmarks/gpu_calibrate.py --out "$OUT" --work /tmp/studio-rehearsal --cpu-rehearsal \
    --methods $METHODS 2>&1 | tee "$OUT/calibration.log"
fi
[ "$METHODS" = "dpo,orpo" ] && { log "done"; exit; }

log "peak and tokens/s against a plain QLoRA script"
if [ $REHEARSE = 0 ]; then
  REMAIN=$(( 565 - ($(date +%s) - START) ))
  timeout $REMAIN $PY benchmarks/peak_vs_plain.py --device cuda --variants plain,studio-off,all-options --warmup 2 --steps 4 \
    --timeout 150 \
    --out "$OUT/peak.json" 2>&1 | tee "$OUT/peak.log"
else
  timeout 600 $PY benchmarks/peak_vs_plain.py --device cpu --variants plain,all-options --steps 1 --warmup 1 \
    --out "$OUT/peak.json" 2>&1 | tee "$OUT/peak.log"
fi
log "done"
