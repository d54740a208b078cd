#!/usr/bin/env bash
# The GPU measurements of issue 8 in one script, for a machine with one CUDA GPU (no internet needed: GPT-2 124M is
# randomly initialised, which does not change its speed). Writes benchmarks/results/*-cuda.json and speedup.png.
#   bash benchmarks/gpu_check.sh            # about 5 minutes on one H100/H200
# TRL's PPO trainer needs trl==1.12 (pip install -r requirements.txt); where the machine has no package index, carry
# the wheels and install them first (pip install --no-index --find-links wheels/ -r requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
for bench in sft rollout ppo; do
    timeout 240 python "benchmarks/bench_${bench}.py" --device cuda || echo "bench_${bench}.py failed or timed out"
done
python benchmarks/plot_results.py
