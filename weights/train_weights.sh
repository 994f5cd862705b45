#!/usr/bin/env bash
# Trains the shipped weights with this project's train.py. Every step resumes, so re-run it after an
# interruption:   RUNS=runs DATA=data nohup nice -n 19 bash weights/train_weights.sh > runs/weights.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
RUNS=${RUNS:-runs}
DATA=${DATA:-data}
mkdir -p "$RUNS"
[ -f "$RUNS/h5-dncnn/train.h5" ] || $PY preprocess.py --data_path "$DATA" --arch DnCNN --mode S --outf "$RUNS/h5-dncnn" --quiet
$PY train.py --arch DnCNN --mode S --noiseL 25 --val_noiseL 25 --h5_dir "$RUNS/h5-dncnn" --outf "$RUNS/DnCNN-S-25" \
  --batchSize 64 --epochs 3 --lr_schedule cosine --lr 1e-3 --lr_min 1e-6 --save_every 200 --log_every 50 --resume --quiet
# Fine-tunes: each starts from the stage before with a fresh Adam and a cosine schedule to 1e-6
fine_tune() {  # ARCH H5 OUT INIT EPOCHS LR SEED [more train.py flags]
  local arch=$1 h5=$2 out=$3 init=$4 epochs=$5 lr=$6 seed=$7; shift 7
  $PY train.py --arch "$arch" --mode S "$@" --noiseL 25 --val_noiseL 25 --h5_dir "$RUNS/$h5" --outf "$RUNS/$out" \
    --init_weights "$RUNS/$init/net.pth" --batchSize 128 --epochs "$epochs" --lr_schedule cosine --lr "$lr" --lr_min 1e-6 \
    --seed "$seed" --save_every 100 --log_every 50 --resume --quiet
}
fine_tune DnCNN h5-dncnn DnCNN-S-25-ft  DnCNN-S-25     3 2e-4 0  # stage 2: a lower learning rate, batch 128
fine_tune DnCNN h5-dncnn DnCNN-S-25-ft3 DnCNN-S-25-ft  4 4e-4 3  # stage 3: another seed for new noise and order
fine_tune DnCNN h5-dncnn DnCNN-S-25-ft4 DnCNN-S-25-ft3 4 4e-4 4  # stage 4: stage 3's recipe again
fine_tune DnCNN h5-dncnn DnCNN-S-25-ft5 DnCNN-S-25-ft4 4 2e-4 5  # stage 5: half the peak rate
fine_tune DnCNN h5-dncnn DnCNN-S-25-ft6 DnCNN-S-25-ft5 4 4e-4 6  # stage 6: stage 4's rate again
fine_tune DnCNN h5-dncnn DnCNN-S-25-ft7 DnCNN-S-25-ft6 4 4e-4 7  # stage 7, the shipped weights: the same again
[ -f "$RUNS/h5-adnet/train.h5" ] || $PY preprocess.py --data_path "$DATA" --arch ADNet --mode S --stride 20 --outf "$RUNS/h5-adnet" --quiet
# ADNet stage 1 trains in parts on one run folder: each --resume with a larger --epochs continues the cosine
# schedule from where the longer schedule would be (a warm restart: ~4.3e-4 at 6 of 11 epochs,
# ~1.65e-4 at 11 of 15, ~1.46e-4 at 15 of 20), annealing to 1e-6 again. A finished part is skipped.
for EPOCHS in 6 11 15 20; do
  $PY train.py --arch ADNet --mode S --stride 20 --noiseL 25 --val_noiseL 25 --h5_dir "$RUNS/h5-adnet" --outf "$RUNS/ADNet-S-25" \
    --batchSize 64 --epochs $EPOCHS --init residual --lr_schedule cosine --lr 1e-3 --lr_min 1e-6 --save_every 200 --log_every 50 --resume --quiet
done
# ADNet stage 2, the shipped weights: a fine-tune of stage 1 on 4x denser (stride 10) patches
[ -f "$RUNS/h5-adnet10/train.h5" ] || $PY preprocess.py --data_path "$DATA" --arch ADNet --mode S --stride 10 --outf "$RUNS/h5-adnet10" --quiet
fine_tune ADNet h5-adnet10 ADNet-S-25-ft ADNet-S-25 3 2e-4 0 --stride 10
# Colour (issue #34), trained on one H200 (bf16 autocast; both runs at once, ~6.5 min each). On 2 CPU cores the
# same commands take days: COLOUR=0 skips them. CBSD432 is BSDS500 minus CBSD68 (data/get_data.sh --color).
if [ "${COLOUR:-1}" = 1 ]; then
  [ -f "$RUNS/h5-cbsd432/train.h5" ] || $PY preprocess.py --data_path "$DATA" --arch DnCNN --mode B --channels 3 --patch_size 40 \
    --stride 20 --aug_times 1 --train_data CBSD432 --val_data McMaster --outf "$RUNS/h5-cbsd432" --quiet
  colour() {  # OUT MAX_STEPS [more train.py flags]
    local out=$1 steps=$2; shift 2
    $PY train.py --arch DnCNN --mode B --channels 3 --patch_size 40 --stride 20 --aug_times 1 --train_data CBSD432 \
      --val_data McMaster --data_path "$DATA" --h5_dir "$RUNS/h5-cbsd432" --outf "$RUNS/$out" --batchSize 128 --epochs 60 \
      --max_steps "$steps" --lr 1e-3 --lr_schedule cosine --lr_min 1e-6 --compile False --save_every 1000 --log_every 200 \
      --resume --quiet "$@"
  }
  colour CDnCNN-B 23193 --noise_model gaussian --sigma_range 0 75 --val_noiseL 25   # white noise, sigma 0-75
  colour CDnCNN-camera 14945 --noise_model camera --camera_profile v1 --val_noiseL 5    # a camera's noise
  # white noise, sigma 15: what the default gives camera photos (it removes PolyU's noise better than CDnCNN-camera);
  # trained on 2 cores of a Zen 4's CPU (bf16 autocast, about 1.6 h)
  colour CDnCNN-S-15 3200 --noise_model gaussian --sigma_range 15 15 --val_noiseL 15
  # its stage 2, the shipped weights/CDnCNN-S-15: a second pass over the patches (fresh Adam, lr 4e-4 cosine,
  # seed 1: new noise and order; 1.8 h on the same CPU)
  colour CDnCNN-S-15-ft 2600 --noise_model gaussian --sigma_range 15 15 --val_noiseL 15 \
    --init_weights "$RUNS/CDnCNN-S-15/net.pth" --lr 4e-4 --seed 1
fi
