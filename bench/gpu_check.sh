#!/usr/bin/env bash
# GPU readiness (issue 11 item 5): a few hundred MTL training steps at H=1024 on synthetic images with
# mixed precision and XLA; prints images/s, peak GPU memory and the share of step time spent waiting
# for input. Budget: <= 5 minutes on one GPU. `bench/gpu_check.sh --dry-run` tests it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec timeout "${GPU_CHECK_TIMEOUT:-300}" "$PY" bench/gpu_check.py "$@"
