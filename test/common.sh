# Shared by the test/*.sh wrappers (Ascend ModelZoo conventions). Source it; do not run it.
# Flags: --data_path= (training), --arch=DnCNN|ADNet|FDnCNN, --device_id=, --nproc=, --epochs=, --batch_size=,
#        --mode=S|B (default S; FDnCNN and --task dncnn3 B), --noiseL=, --nnodes=, --node_rank=, --master_addr=, --master_port=, --max_restarts= (torchrun
#        restarts failed workers that many times; they resume from the last checkpoint); all else goes to the script.
# Environment: max_steps=N stops training after N steps, nproc=N caps the processes (both for quick checks),
#              output_root=DIR writes logs, runs and the patch cache under DIR instead of test/output (the tests).
test_path_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cur_path=$(dirname "$test_path_dir")
data_path=""; arch=""; device_id=${ASCEND_DEVICE_ID:-0}; nproc=${nproc:-}; epochs=""; batch_size=128; mode=""; noiseL=25
nnodes=1; node_rank=0; master_addr=""; master_port=29500; pth_path=""; test_data=Set68
extra_args=()
for para in "$@"; do
  case "$para" in
    --data_path=*) data_path=${para#*=};;
    --arch=*) arch=${para#*=};;
    --device_id=*) device_id=${para#*=};;
    --nproc=*) nproc=${para#*=};;
    --epochs=*) epochs=${para#*=};;
    --batch_size=*) batch_size=${para#*=};;
    --mode=*) mode=${para#*=};;
    --noiseL=*) noiseL=${para#*=};;
    --nnodes=*) nnodes=${para#*=};;
    --max_restarts=*) max_restarts=${para#*=};;
    --node_rank=*) node_rank=${para#*=};;
    --master_addr=*) master_addr=${para#*=};;
    --master_port=*) master_port=${para#*=};;
    --pth_path=*) pth_path=${para#*=};;
    --test_data=*) test_data=${para#*=};;
    *) extra_args+=("$para");;
  esac
done
export ASCEND_DEVICE_ID=$device_id

# ./data when it holds a training set and a test set: the Ascend ADNet port's wrappers took no --data_path.
default_data_path() {
  if { [ -d data/train ] || [ -d data/pristine_images_gray ]; } && { [ -d data/Set12 ] || [ -d data/Set68 ] || [ -d data/BSD68 ]; }; then
    echo data
  fi
}
[ -n "$data_path" ] || data_path=$(default_data_path)

# The ADNet port's layout (pristine_images_gray, no train/) trains ADNet: the rule of dataset.default_arch.
if [ -z "$arch" ]; then
  if [ -n "$data_path" ] && [ -d "$data_path/pristine_images_gray" ] && [ ! -d "$data_path/train" ]; then arch=ADNet; else arch=DnCNN; fi
fi
case "$arch" in DnCNN|ADNet|FDnCNN) ;; *) echo "error: --arch must be DnCNN, ADNet or FDnCNN, got '$arch'" >&2; exit 2;; esac
[ -n "$mode" ] || { [ "$arch" = FDnCNN ] || [[ " $* " == *" --task dncnn3 "* || " $* " == *" --task=dncnn3 "* ]] && mode=B || mode=S; }
Network=$arch
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$cur_path/.venv/bin/python" ]; then PYTHON="$cur_path/.venv/bin/python"; else PYTHON=python3; fi
fi
source "$test_path_dir/env.sh"
output_root=${output_root:-$test_path_dir/output}
out_dir="$output_root/$ASCEND_DEVICE_ID"
mkdir -p "$out_dir"

require_data_path() {
  if [ -z "$data_path" ]; then
    echo "error: --data_path=DIR is required (a folder holding train/ and Set12/; ./data is used when it holds them)" >&2; exit 2
  fi
  if [ ! -d "$data_path" ]; then echo "error: --data_path=$data_path is not a folder" >&2; exit 2; fi
}

# best_model.pth of the newest training run: the wrappers' (test/output/*/ckpt_*) or the ADNet port's (./logssigma*_*).
newest_best_weights() {
  local found
  found=$(ls -t "$output_root"/*/ckpt_*/best_model.pth logssigma*_*/best_model.pth 2>/dev/null | head -1)
  if [ -z "$found" ]; then
    echo "error: no training run to evaluate (no test/output/*/ckpt_*/best_model.pth or ./logssigma*_*/best_model.pth): train first, or pass --pth_path=CHECKPOINT" >&2
    return 2
  fi
  echo "$found"
}

# Devices of this machine's accelerator, or 0 on CPU.
accelerator_count() {
  "$PYTHON" - <<'PY' 2>/dev/null || echo 0
import torch
try:
    import torch_npu  # noqa: F401
    print(torch.npu.device_count()); raise SystemExit
except ImportError:
    pass
print(torch.cuda.device_count() if torch.cuda.is_available() else 0)
PY
}

# run_training RANKS CASE_KIND TRAIN_ARGS... : trains, writes the Ascend log files, exits with training's status.
run_training() {
  local wanted=$1 kind=$2; shift 2
  local devices=0
  RankSize=${nproc:-$wanted}
  # accelerator_count imports torch (seconds): only a multi-process launch needs it
  if [ "$RankSize" -gt 1 ] || [ "$nnodes" -gt 1 ]; then devices=$(accelerator_count); fi
  if [ "$devices" -gt 0 ] && [ "$RankSize" -gt "$devices" ]; then RankSize=$devices; fi
  BatchSize=$batch_size
  DeviceType=$(uname -m)
  CaseName=${Network}_bs${BatchSize}_${RankSize}p_${kind}
  local log="$out_dir/train_${ASCEND_DEVICE_ID}.log"
  local run_dir="$out_dir/ckpt_${CaseName}"
  local epoch_args=(); [ -n "$epochs" ] && epoch_args=(--epochs "$epochs")
  local launcher=("$PYTHON")
  if [ "$RankSize" -gt 1 ] || [ "$nnodes" -gt 1 ]; then
    # a fresh store per rendezvous round: restarted workers never read what a failed attempt left (device.restart_store)
    launcher=(env TORCH_DISABLE_SHARE_RDZV_TCP_STORE="${TORCH_DISABLE_SHARE_RDZV_TCP_STORE:-1}"
              "$PYTHON" -m torch.distributed.run --nproc_per_node="$RankSize" --nnodes="$nnodes" --node_rank="$node_rank"
              --max-restarts="${max_restarts:-0}")
    if [ -n "$master_addr" ]; then launcher+=(--master_addr="$master_addr" --master_port="$master_port"); else launcher+=(--standalone); fi
    [ "$devices" -gt 0 ] || export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  fi
  local start; start=$(date +%s)
  set -o pipefail
  # patches cached per content: <output_root>/h5/<key of the data folders' contents and the patch flags>
  "${launcher[@]}" "$cur_path/train.py" --data_path "$data_path" --patch_cache "$output_root/h5" \
      --arch "$arch" --mode "$mode" --noiseL "$noiseL" --val_noiseL "$noiseL" --batchSize "$BatchSize" \
      --outf "$run_dir" --quiet "${epoch_args[@]}" "$@" "${extra_args[@]}" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  local e2e_time=$(( $(date +%s) - start ))
  local FPS ActualLoss train_accuracy TrainingTime
  FPS=$(grep -a '^FPS:' "$log" | tail -1 | awk '{print $2}')
  ActualLoss=$(grep -a '^loss:' "$log" | tail -1 | awk '{print $2}')
  train_accuracy=$(grep -a 'best PSNR_val:' "$log" | tail -1 | awk '{print $3}')
  TrainingTime=$(awk -v b="$BatchSize" -v f="${FPS:-0}" 'BEGIN { if (f > 0) printf "%.2f", b * 1000 / f; else print "NaN" }')
  echo "------------------ Final result ------------------"
  echo "Final Performance images/sec : ${FPS:-NaN}"
  echo "Final Train Accuracy : ${train_accuracy:-NaN}"
  echo "E2E Training Duration sec : $e2e_time"
  [ -f "$run_dir/best_model.pth" ] && echo "Best weights : $run_dir/best_model.pth"
  {
    echo "Network = ${Network}"
    echo "RankSize = ${RankSize}"
    echo "BatchSize = ${BatchSize}"
    echo "DeviceType = ${DeviceType}"
    echo "CaseName = ${CaseName}"
    echo "ActualFPS = ${FPS:-NaN}"
    echo "TrainingTime = ${TrainingTime}"
    echo "TrainAccuracy = ${train_accuracy:-NaN}"
    echo "ActualLoss = ${ActualLoss:-NaN}"
    echo "E2ETrainingTime = ${e2e_time}"
  } > "$out_dir/${CaseName}.log"
  return "$status"
}
