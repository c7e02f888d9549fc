#!/usr/bin/env bash
# Issue 14, finding the person: does training on negatives (windows of the photo without the person, all-zero
# targets) make the student's crops easier to rank? Fine-tunes the shipped student 4 epochs with negatives
# (configs/experiments/lspet128/fpd_hg2_64_neg.yaml) beside its control without (fpd_hg2_64_neg_control.yaml), one thread each,
# fits each one's person scorer, then runs benchmarks/localisation.py on the validation slice for both and for
# the shipped student. Resumable: a finished step is skipped.
#   bash experiments/neg_experiment.sh 2>&1 | tee runs/lspet128/neg_experiment.log
set -euo pipefail
cd "$(dirname "$0")/.."
R=runs/lspet128
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 OMP_NUM_THREADS=1
say() { echo "[$(date -u +%F\ %T)] $*"; }
for n in fpd_hg2_64_neg fpd_hg2_64_neg_control; do
  if grep -q "^done: " "$R/$n.console" 2> /dev/null; then continue; fi
  resume=""; [ -f "$R/$n/last.pt" ] && resume="--resume"
  say "start $n $resume"
  posedistill distill --config configs/experiments/lspet128/$n.yaml --teacher $R/teacher_hg4_128/best.pt \
    --init $R/fpd_hg2_64/best.pt --out $R/$n $resume --no-progress > "$R/$n.console" 2>&1 &
done
wait
for n in fpd_hg2_64_neg fpd_hg2_64_neg_control; do
  [ -f "$R/$n/best.pt.person.json" ] || python -m posedistill.inference.scorer_fit --weights $R/$n/best.pt --threads 1 --no-progress &
done
wait
for n in fpd_hg2_64_neg fpd_hg2_64_neg_control; do
  python benchmarks/localisation.py --split val --methods pose --scorer-only --weights $R/$n/best.pt \
    --out $R/$n/localisation_val.json > $R/$n/localisation_val.txt 2>&1 &
done
wait
python benchmarks/localisation.py --split val --methods pose --scorer-only --weights $R/fpd_hg2_64/best.pt \
  --threads 2 --out $R/fpd_hg2_64/localisation_val.json > $R/fpd_hg2_64/localisation_val.txt 2>&1
for n in fpd_hg2_64 fpd_hg2_64_neg fpd_hg2_64_neg_control; do say "$n (validation scenes)"; grep -A4 "^method" $R/$n/localisation_val.txt; done
