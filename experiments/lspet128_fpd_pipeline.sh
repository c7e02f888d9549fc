#!/usr/bin/env bash
# Issue 12, everything after the teacher, in order and resumable: start it again after a session ends and each
# stage skips what is done (finished runs are skipped, interrupted ones resume from last.pt, the cache continues
# at its first missing epoch).
#
# One teacher-heatmap cache (runs/lspet128/teacher_cache, float32, 373 MB an epoch) serves every FPD student:
# they all use seed 0 and the same data section, so epoch e's augmented samples are the same for all of them,
# and distilling from the cache gives the online losses (posedistill.training.teacher_cache). Building it costs
# one teacher pass per sample (about 21 samples/s with 2 threads); each student then trains at about 2.7x the
# online speed (benchmarks/results/teacher_cache.json).
#
#   1. wait until the teacher run is finished (all epochs of configs/experiments/lspet128/teacher_hg4_128.yaml); its test
#      evaluations and the "after" teacher-outlier figure
#   2. cache epochs 0-3; alpha / teacher_norm on validation: experiments/lspet128_compare.sh fpd_a0.5 fpd_a0.5_clip
#      fpd_a0.8 gt_d3_fg10, two at a time with one thread each
#   3. choose the fpd_* variant with the best validation PCK after 4 epochs -> runs/lspet128/fpd_choice.json
#   4. cache to 12 epochs; FPD from the ground-truth student and its alpha-0 control, side by side
#   5. cache to 36 epochs; FPD from scratch
#   Every finished run is evaluated on the test slice with and without flip test (RUN/eval_test[_noflip].json).
#
#   nohup bash experiments/lspet128_fpd_pipeline.sh >> runs/lspet128/fpd_pipeline.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
R=runs/lspet128
T=$R/teacher_hg4_128/best.pt
C=$R/teacher_cache
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
say() { echo "[$(date -u +%F\ %T)] $*"; }
epochs_of() { python -c "import sys; from posedistill.config import load_config; print(load_config(sys.argv[1]).train.epochs)" "$1"; }
# finished RUN_DIR EPOCHS: its log.csv has a row for the last epoch
finished() { [ -f "$1/log.csv" ] && [ "$(tail -n +2 "$1/log.csv" | wc -l)" -ge "$2" ]; }
cache_to() {
  say "teacher cache to $1 epochs"
  OMP_NUM_THREADS=2 python -m posedistill.training.teacher_cache --teacher "$T" \
    --config configs/experiments/lspet128/fpd_hg2_64.yaml --out "$C" --epochs "$1" --no-progress
}
# evaluate RUN_DIR: test-slice PCK with and without flip test, once
evaluate() {
  local flag suffix
  for flag in flip no-flip; do
    suffix=""; [ $flag = no-flip ] && suffix=_noflip
    [ -f "$1/eval_test$suffix.json" ] && continue
    OMP_NUM_THREADS=2 posedistill evaluate "$1/best.pt" --data ../shared/data/lspet --dataset lspet --split test \
      --$flag --workers 0 --json "$1/eval_test$suffix.json" > /dev/null
  done
  say "$1: test PCK $(python -c "import json,sys; print(*(round(json.load(open(f))['pck']['mean'], 1) for f in sys.argv[1:]))" "$1/eval_test.json" "$1/eval_test_noflip.json") (flip, no flip)"
}
# distill NAME CONFIG THREADS [ARGS...]: one FPD run in the foreground, resumed when interrupted
distill() {
  local name=$1 config=$2 threads=$3; shift 3
  local out=$R/$name resume=""
  if finished "$out" "$(epochs_of "$config")"; then say "$name: finished"; return; fi
  { [ -f "$out/last.pt" ] || [ -f "$out/snapshot.pt" ]; } && resume="--resume"
  say "$name: start${resume:+ (resume)}"
  OMP_NUM_THREADS=$threads posedistill distill --config "$config" --out "$out" --set name="$name" $resume \
    --no-progress "$@" >> "$R/$name.log" 2>&1
  say "$name: done"
  evaluate "$out"
}

# 1
teacher_epochs=$(epochs_of configs/experiments/lspet128/teacher_hg4_128.yaml)
while pgrep -f "out $R/teacher_hg4_128" > /dev/null; do sleep 60; done
finished $R/teacher_hg4_128 "$teacher_epochs" || { say "teacher not finished: resume it first"; exit 1; }
say "teacher finished"
evaluate $R/teacher_hg4_128
[ -f benchmarks/results/teacher_outliers_128.json ] || OMP_NUM_THREADS=2 python benchmarks/teacher_outliers.py \
  --teacher "$T" --config configs/experiments/lspet128/fpd_hg2_64.yaml --figure docs/teacher_outliers_after.png \
  --out benchmarks/results/teacher_outliers_128.json

# 2
cache_to 4
export TEACHER_CACHE=$C
bash experiments/lspet128_compare.sh fpd_a0.5 fpd_a0.8 &
bash experiments/lspet128_compare.sh fpd_a0.5_clip gt_d3_fg10
wait
python experiments/lspet128_compare_table.py

# 3
python - <<'EOF'
import csv, json, yaml
from pathlib import Path
root = Path("runs/lspet128/compare")
rows = []
for name in ("fpd_a0.5", "fpd_a0.5_clip", "fpd_a0.8"):
    log = list(csv.DictReader(open(root / name / "log.csv")))
    cfg = yaml.safe_load(open(root / name / "config.yaml"))
    rows.append({"variant": name, "val_pck": float(log[-1]["val_pck"]), "alpha": cfg["distill"]["alpha"],
                 "teacher_norm": cfg["distill"]["teacher_norm"]})
best = max(rows, key=lambda r: r["val_pck"])
Path("runs/lspet128/fpd_choice.json").write_text(json.dumps({"chosen": best, "candidates": rows}, indent=1))
print("chosen:", best)
EOF
alpha=$(python -c "import json; print(json.load(open('$R/fpd_choice.json'))['chosen']['alpha'])")
norm=$(python -c "import json; print(json.load(open('$R/fpd_choice.json'))['chosen']['teacher_norm'])")
say "FPD settings chosen on validation: alpha $alpha, teacher_norm $norm"

# 4
cache_to 12
distill fpd_hg2_64_init configs/experiments/lspet128/fpd_hg2_64_init.yaml 1 --teacher "$T" --teacher-cache "$C" \
  --init $R/student_hg2_64/best.pt --set distill.alpha="$alpha" --set distill.teacher_norm="$norm" &
distill fpd_hg2_64_init_a0 configs/experiments/lspet128/fpd_hg2_64_init_a0.yaml 1 --teacher "$T" \
  --init $R/student_hg2_64/best.pt
wait

# 5
cache_to 36
distill fpd_hg2_64 configs/experiments/lspet128/fpd_hg2_64.yaml 2 --teacher "$T" --teacher-cache "$C" \
  --set distill.alpha="$alpha" --set distill.teacher_norm="$norm"
say "all FPD runs finished"
