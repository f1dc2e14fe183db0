#!/usr/bin/env bash
# The GPU check in one command (never in CI): paper-preset generation frames/s at 512x256 and
# 1024x512 (eager, compiled, bf16), training s/step, and a TRAIN_MINUTES (default 3) paper-preset
# run on subject 4 with its held-out figures -> bench/results/gpu.json. Without CUDA it runs a
# seconds-long smoke version and writes to a temporary file. Extra arguments go to gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" bench/gpu_check.py --train-minutes "${TRAIN_MINUTES:-3}" "$@"
