#!/usr/bin/env bash
# Every model the photo default and the papers' tables need, trained by our train.py in priority order, each
# resumable and saved every minute: a device taken away loses at most a minute, and the next run of this script
# (on the next lent GPU, or on the CPU in the background) goes on where it stopped. A finished model is skipped.
#   bash weights/train_zoo.sh --device cuda --minutes 9     # one lent GPU session: as far as 9 minutes go
#   bash weights/train_zoo.sh --dry_run                     # what it would run, in order
#   RUNS=runs/zoo DATA=data nohup nice -n 19 bash weights/train_zoo.sh --device cpu > runs/zoo.log 2>&1 &
# --toy: the same commands at toy sizes (tests/test_zoo.py). DATA needs train, Set12, Set68 (data/get_data.sh)
# and, for the colour models and DnCNN-3's SR/JPEG pairs, CBSD432 and McMaster (data/get_data.sh --color).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
RUNS=${RUNS:-runs/zoo}
DATA=${DATA:-data}
DEVICE=auto MINUTES=0 DRY=0 TOY=0
while [ $# -gt 0 ]; do
  case $1 in
    --device) DEVICE=$2; shift 2 ;;
    --device=*) DEVICE=${1#*=}; shift ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --minutes=*) MINUTES=${1#*=}; shift ;;
    --dry_run|--dry-run) DRY=1; shift ;;
    --toy) TOY=1; shift ;;
    *) echo "train_zoo.sh: unknown option $1 (--device D, --minutes N, --dry_run, --toy)" >&2; exit 2 ;;
  esac
done
START=$(date +%s)
minutes_left() {  # of --minutes (a large number when there is no limit)
  awk -v m="$MINUTES" -v s="$START" -v now="$(date +%s)" 'BEGIN { printf "%.2f", (m > 0 ? m - (now - s) / 60 : 1e6) }'
}
if [ "$TOY" = 1 ]; then
  SIZE=(--num_of_layers 3 --batchSize 8 --log_every 2 --tensorboard False); SCALE=0; TOY_STEPS=4
else
  SIZE=(--batchSize 128 --log_every 100); SCALE=1
fi
steps() { [ "$SCALE" = 1 ] && echo "$1" || echo "$TOY_STEPS"; }
COLOUR=(--arch DnCNN --mode B --channels 3 --patch_size 40 --stride 20 --aug_times 1 --train_data CBSD432
        --val_data McMaster)
h5() {  # FOLDER preprocess.py flags: the patches, made once
  local out=$RUNS/$1; shift
  if [ ! -f "$out/train.h5" ]; then
    echo "+ $PY preprocess.py --data_path $DATA $* --outf $out --quiet"
    [ "$DRY" = 1 ] || $PY preprocess.py --data_path "$DATA" "$@" --outf "$out" --quiet
  fi
}
train() {  # NAME H5 STEPS train.py flags: one model, from where it stopped, for the minutes left
  local name=$1 h5dir=$RUNS/$2 total; total=$(steps "$3"); shift 3
  local left; left=$(minutes_left)
  if awk -v l="$left" 'BEGIN { exit !(l < 0.5) }'; then
    echo "$name: out of time (--minutes $MINUTES), left for the next run"; return 1
  fi
  local cmd=("$PY" train.py "$@" --data_path "$DATA" --h5_dir "$h5dir" --outf "$RUNS/$name" --device "$DEVICE"
             "${SIZE[@]}" --epochs 1000 --max_steps "$total" --lr 1e-3 --lr_schedule cosine --lr_min 1e-6
             --save_minutes 1 --resume --quiet)
  [ "$MINUTES" != 0 ] && cmd+=(--max_minutes "$left")
  echo "+ ${cmd[*]}"
  [ "$DRY" = 1 ] || "${cmd[@]}"
}
zoo() {
  # 1-2. the photo default's colour models: blind white noise 0-75, and white sigma 15 for a camera's noise
  h5 h5-cbsd432 "${COLOUR[@]}"
  train CDnCNN-B h5-cbsd432 60000 "${COLOUR[@]}" --noise_model gaussian --sigma_range 0 75 --val_noiseL 25 || return 0
  train CDnCNN-S-15 h5-cbsd432 30000 "${COLOUR[@]}" --noise_model gaussian --sigma_range 15 15 --val_noiseL 15 || return 0
  # 3. the DnCNN paper's DnCNN-S at sigma 15, 25, 50 (40x40 patches of the 400 BSD images)
  h5 h5-dncnn --arch DnCNN --mode S
  for sigma in 25 15 50; do
    train DnCNN-S-$sigma h5-dncnn 30000 --arch DnCNN --mode S --noiseL $sigma --val_noiseL $sigma || return 0
  done
  # 4. DnCNN-B (50x50 patches, sigma 0-55)
  h5 h5-dncnn-b --arch DnCNN --mode B
  train DnCNN-B h5-dncnn-b 60000 --arch DnCNN --mode B --val_noiseL 25 || return 0
  # 5. ADNet-S-25 and ADNet-B (50x50 patches, stride 20)
  h5 h5-adnet --arch ADNet --mode S --stride 20
  train ADNet-S-25 h5-adnet 30000 --arch ADNet --mode S --stride 20 --noiseL 25 --val_noiseL 25 --init residual || return 0
  h5 h5-adnet-b --arch ADNet --mode B --stride 20
  train ADNet-B h5-adnet-b 60000 --arch ADNet --mode B --stride 20 --val_noiseL 25 --init residual || return 0
  # 6. FDnCNN (gray, 20 layers, told sigma: 0-75 per patch, as KAIR's) and DnCNN-3 (20 layers: Gaussian 0-55,
  # bicubic x2/x3/x4 and JPEG 5-99; SR/JPEG pairs from CBSD432's Y, made once into the h5)
  h5 h5-fdncnn --arch FDnCNN
  train FDnCNN h5-fdncnn 60000 --arch FDnCNN --val_noiseL 25 || return 0
  h5 h5-dncnn3 --task dncnn3
  train DnCNN-3 h5-dncnn3 60000 --task dncnn3 --val_noiseL 25 || return 0
  [ "$DRY" = 1 ] && echo "dry run: nothing run" || echo "zoo: every model trained to its steps"
}
mkdir -p "$RUNS"
zoo
