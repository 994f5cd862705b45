#!/usr/bin/env bash
# Performance run: a bounded number of steps, then FPS.
#   bash test/train_performance_8p.sh --data_path=DIR [--arch=DnCNN|ADNet] [--nproc=N] [--epochs=E] [--batch_size=B] [train.py flags]
source "$(dirname "$0")/common.sh"
require_data_path
run_training 8 perf --max_steps "${max_steps:-40}" --epochs 1
