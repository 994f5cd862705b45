#!/usr/bin/env bash
# Evaluate the weights of a training run (default: best_model.pth of the newest run, see eval_1p.sh).
#   bash test/train_eval_8p.sh [--data_path=DIR] [--pth_path=CKPT] [--test_data=Set68] [--noiseL=25]
source "$(dirname "$0")/common.sh"
require_data_path
exec bash "$test_path_dir/eval_1p.sh" ${pth_path:+"--pth_path=$pth_path"} --data_path="$data_path" \
    --test_data="$test_data" --noiseL="$noiseL" --device_id="$device_id" "${extra_args[@]}"
