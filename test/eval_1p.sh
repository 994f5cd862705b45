#!/usr/bin/env bash
# Evaluate a checkpoint on a test set (PSNR/SSIM); without --pth_path, the newest training run's best_model.pth.
#   bash test/eval_1p.sh [--pth_path=CKPT] [--data_path=data] [--test_data=Set68] [--noiseL=25] [test.py flags]
source "$(dirname "$0")/common.sh"
[ -n "$pth_path" ] || pth_path=$(newest_best_weights) || exit 2
log="$out_dir/eval_${ASCEND_DEVICE_ID}.log"
set -o pipefail
"$PYTHON" "$cur_path/test.py" --logdir "$pth_path" --data_path "${data_path:-data}" --test_data "$test_data" \
    --test_noiseL "$noiseL" --quiet "${extra_args[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo "Final Test Accuracy : $(grep -a 'PSNR on test data' "$log" | awk '{print $5}')"
exit "$status"
