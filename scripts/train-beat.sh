#!/usr/bin/env bash
# Train the beat-time model in resumable 15-minute chunks until `gen train` says "finished".
# A killed or timed-out chunk loses at most --checkpoint-every steps; run this again to go on.
# The warm start is the last default-encoding gen-small (ids 0..410 keep their rows).
#   bash scripts/train-beat.sh [OUT] [PARENT] [DATA]
# Extra `gen train` options go in TRAIN_FLAGS; the size comparison's longer-context twin, with the
# same tokens per step, was:
#   TRAIN_FLAGS="--context 1024 --batch-size 4" bash scripts/train-beat.sh runs/beat-long
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/beat}"
data="${3:-data/beat}"
parent="${2:-runs/parent-default.pt}"
if [ ! -f "$parent" ]; then
  mkdir -p "$(dirname "$parent")"
  git show 635f70f:models/gen-small.pt > "$parent"  # the default-encoding gen-small
fi
while true; do
  status=0
  gen train --data "$data" --out "$out" --init "$parent" --exclude-source pop-mma --genre-dropout 0.1 \
      --max-steps 1500 --batch-size 8 --lr 5e-4 --warmup-steps 100 --checkpoint-every 25 \
      --eval-every 250 --minutes 15 --resume --threads 2 ${TRAIN_FLAGS:-} > "$out.chunk.log" 2>&1 || status=$?
  cat "$out.chunk.log" >> "$out.log"
  if [ "$status" -ne 0 ]; then
    tail -3 "$out.chunk.log" >&2
    exit "$status"
  fi
  if grep -q "^finished" "$out.chunk.log"; then
    break
  fi
done
echo "finished: $out/model.pt"
