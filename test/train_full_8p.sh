#!/usr/bin/env bash
# Full training on the reference schedule (50 epochs DnCNN, 70 ADNet; env max_steps=N stops after N steps).
#   bash test/train_full_8p.sh --data_path=DIR [--arch=DnCNN|ADNet] [--nproc=N] [--epochs=E] [--batch_size=B] [train.py flags]
source "$(dirname "$0")/common.sh"
require_data_path
run_training 8 acc ${max_steps:+--max_steps "$max_steps"}
