#!/usr/bin/env bash
# Issue 12/14, the students' second cycle: after fpd_hg2_64_restart and student_hg2_64_restart have finished
# (experiments/lspet128_train.sh), evaluate both on the test slice, fine-tune the FPD one 4 epochs with negatives
# (configs/experiments/lspet128/fpd_hg2_64_restart_neg.yaml, as fpd_hg2_64_neg.yaml did for the first cycle), fit the person
# scorers of the FPD student with and without negatives, and compare their localisation on the 500 validation
# scenes. Waits for the training runs; a finished step is skipped, so it can be run again after an interruption.
# Then ship on a quiet machine (experiments/lspet128_ship.sh).
#   bash experiments/lspet128_restart_pipeline.sh 2>&1 | tee -a runs/lspet128/restart_pipeline.log
set -euo pipefail
cd "$(dirname "$0")/.."
R=runs/lspet128
T=$R/teacher_hg4_128_restart/best.pt
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
say() { echo "[$(date -u +%F\ %T)] $*"; }
finished() {  # the run's log.csv has as many epochs as its config asks for
  python -c "
import csv, sys, yaml
run = '$R/$1'
try:
    rows = list(csv.DictReader(open(run + '/log.csv')))
    sys.exit(0 if len(rows) >= yaml.safe_load(open(run + '/config.yaml'))['train']['epochs'] else 1)
except FileNotFoundError:
    sys.exit(1)"
}
for n in fpd_hg2_64_restart student_hg2_64_restart; do
  until finished $n && ! pgrep -f "out $R/$n( |$)" > /dev/null; do sleep 60; done
done
say "both second-cycle students have finished"
evaluate() {  # test slice, with and without flip test
  for f in flip no-flip; do
    out=$R/$1/eval_test.json; [ $f = no-flip ] && out=$R/$1/eval_test_noflip.json
    [ -f "$out" ] || OMP_NUM_THREADS=2 posedistill evaluate "$R/$1/best.pt" --data ../shared/data/lspet \
      --dataset lspet --split test --$f --json "$out" > /dev/null
  done
  say "$1 test PCK@0.2: $(python -c "import json; print(' / '.join('%.1f' % json.load(open('$R/$1/' + s))['pck']['mean'] for s in ('eval_test.json', 'eval_test_noflip.json')))") (flip / no flip)"
}
evaluate fpd_hg2_64_restart
evaluate student_hg2_64_restart
N=fpd_hg2_64_restart_neg
if ! finished $N; then
  resume=""; [ -f "$R/$N/last.pt" ] && resume="--resume"
  say "fine-tune $N with negatives $resume"
  OMP_NUM_THREADS=2 posedistill distill --config configs/experiments/lspet128/$N.yaml --teacher $T \
    --init $R/fpd_hg2_64_restart/best.pt --out $R/$N $resume --no-progress > "$R/$N.console" 2>&1
fi
evaluate $N
for n in fpd_hg2_64_restart $N; do
  [ -f "$R/$n/best.pt.person.json" ] || OMP_NUM_THREADS=1 python -m posedistill.inference.scorer_fit --weights $R/$n/best.pt \
    --threads 1 --no-progress > "$R/$n/person_scorer.txt" 2>&1 &
done
wait
for n in fpd_hg2_64_restart $N; do
  [ -f "$R/$n/localisation_val.json" ] || OMP_NUM_THREADS=1 python benchmarks/localisation.py --split val --methods pose \
    --scorer-only --weights $R/$n/best.pt --threads 1 --out $R/$n/localisation_val.json > $R/$n/localisation_val.txt 2>&1 &
done
wait
for n in fpd_hg2_64_restart $N; do say "$n (validation scenes)"; grep -A4 "^method" $R/$n/localisation_val.txt; done
