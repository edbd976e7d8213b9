#!/bin/bash
# One candidate: train (one job at a time), evaluate, keep the small files.
# usage: run.sh NAME "EVAL ARGS" --set k=v ...   (EVAL ARGS "" = full evaluate, "none" = skip)
set -u
NAME=$1; EVAL=$2; shift 2
OUT=/tmp/vae/$NAME
KEEP=/work/vae-search/experiments/bench/search-vae/$NAME
PY=/work/main/.venv/bin/python
cd /work/vae-search
mkdir -p "$KEEP"
L0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s.%N)
( while true; do n=$(ps -eo args | grep -c "[p]ytest"); echo $n; sleep 10; done ) > "$KEEP/others.txt" & SAMP=$!
$PY -m gan_vae_tf.train --preset vae-mnist --data-dir /work/shared/data --out "$OUT" --overwrite "$@" > "$KEEP/train.log" 2>&1
RC=$?
kill $SAMP 2>/dev/null
BUSY=$(awk '{t++; if ($1>0) b++} END {printf "%d/%d", b, t}' "$KEEP/others.txt")
T1=$(date +%s.%N)
L1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "{\"rc\": $RC, \"wall_seconds\": $(echo "$T1 - $T0" | bc), \"loadavg_before\": \"$L0\", \"loadavg_after\": \"$L1\", \"samples_with_pytest_running\": \"$BUSY\", \"args\": \"$*\"}" > "$KEEP/wall.json"
cp "$OUT"/config.json "$OUT"/history.csv "$OUT"/summary.json "$KEEP"/ 2>/dev/null
LAST=$(ls "$OUT"/samples/*.png 2>/dev/null | sort | tail -1)
[ -n "$LAST" ] && cp "$LAST" "$KEEP/last-samples.png"
if [ "$EVAL" != "none" ]; then
  E0=$(cut -d' ' -f1-3 /proc/loadavg)
  EV0=$(date +%s); $PY -m gan_vae_tf.evaluate "$OUT" --data-dir /work/shared/data $EVAL > "$KEEP/evaluate.txt" 2>&1
  cp "$OUT"/metrics.json "$KEEP"/ 2>/dev/null; echo "evaluate seconds $(( $(date +%s) - EV0 ))" >> "$KEEP/evaluate.txt"
fi
cat "$KEEP/wall.json"; tail -3 "$KEEP/train.log"; grep -E "evaluate seconds|ELBO|IWAE|classifier_score|fid|class hist|precision|recall" "$KEEP/evaluate.txt" 2>/dev/null
