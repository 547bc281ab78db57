#!/usr/bin/env bash
# The CUDA path in one run on a GPU machine: the `gpu` test tier (DeepSpeed/NCCL training in bf16
# under ZeRO 0-3, fp32 GPU vs CPU, resume, FlexTok bf16, generation), then training-step and
# generation speed. Logs go to $LOG_DIR (default bench/gpu_logs).
#   bash bench/gpu_check.sh
# Where fourm's dependencies are not installed, put their wheels in WHEELS (default .whl/):
# they are installed under /tmp/site first (no network needed).
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_DIR=${LOG_DIR:-bench/gpu_logs}
WHEELS=${WHEELS:-.whl}
mkdir -p "$LOG_DIR"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG_DIR/gpu.txt"
$PY -c "import torch, deepspeed; print('torch', torch.__version__, 'deepspeed', deepspeed.__version__)" | tee -a "$LOG_DIR/gpu.txt"

timeout 300 $PY -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider --timeout=240 -rA 2>&1 \
  | tee "$LOG_DIR/gpu_tests.log" | grep -E "PASSED|FAILED|ERROR|passed|failed|^E " | head -60

for precision in fp32 bf16; do
  $PY bench/train_step.py --preset tiny --batch 8 --steps 20 --warmup 3 --device cuda --precision $precision
  $PY bench/train_step.py --preset tiny --batch 128 --steps 10 --warmup 3 --device cuda --precision $precision
done 2>&1 | tee "$LOG_DIR/train_step.log"
$PY bench/train_step.py --preset B --batch 64 --steps 5 --warmup 2 --device cuda --precision bf16 2>&1 | tee -a "$LOG_DIR/train_step.log"
$PY bench/generate.py --preset tiny --device cuda --repeats 3 2>&1 | tee "$LOG_DIR/generate.log"
