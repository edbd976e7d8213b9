#!/bin/bash
# One vae-mnist candidate on one core: train, evaluate, keep the small files in search-vae/NAME.
# usage: screen.sh CORE NAME --set k=v ...   (GAN_VAE_TF_DATA_DIR: the data; OUT: runs folder;
# EVAL: evaluate's flags, by default a screen's 2,000 samples and IWAE k=200 on 500 images)
set -u
CORE=$1; NAME=$2; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PY=$ROOT/.venv/bin/python
RUN=${OUT:-/tmp/vae-search}/$NAME
KEEP=$HERE/$NAME
mkdir -p "$KEEP"
T0=$(date +%s)
taskset -c "$CORE" "$PY" -m gan_vae_tf.train --preset vae-mnist --out "$RUN" --overwrite \
  --progress epoch "$@" > "$KEEP/train.log" 2>&1 || { echo "$NAME: training failed"; exit 1; }
T1=$(date +%s)
taskset -c "$CORE" "$PY" -m gan_vae_tf.evaluate "$RUN" ${EVAL:---quality-num 2000 --iwae-k 200 --iwae-images 500} \
  > "$KEEP/evaluate.txt" 2>&1
echo "{\"core\": $CORE, \"train_wall_seconds\": $((T1 - T0)), \"args\": \"$*\"}" > "$KEEP/wall.json"
cp "$RUN"/config.json "$RUN"/history.csv "$RUN"/summary.json "$RUN"/metrics.json "$KEEP"/
cp "$(ls "$RUN"/samples/*.png | sort | tail -1)" "$KEEP/last-samples.png"
echo "$NAME: $(grep -E 'test ELBO|IWAE|classifier_score|fid ' "$KEEP/evaluate.txt" | tr -s ' ' | tr '\n' ';')"
