#!/usr/bin/env bash
# Issue 12: which recipe reaches a given validation PCK in fewer epochs? Short runs (4 epochs) of the hg2_64
# student from ground truth at 128 input, two at a time with one thread each (small Hourglasses gain little
# from a second thread: benchmarks/train_throughput.py). Results: runs/lspet128/compare/*/log.csv, summarised
# by `python experiments/lspet128_compare_table.py`.
#   bash experiments/lspet128_compare.sh [VARIANT...]      (default: the ground-truth recipe variants)
# The fpd_* variants choose alpha and teacher_norm for the FPD runs: the long runs' recipe (depth 3, fg_weight 10)
# by `distill` from $TEACHER (default runs/lspet128/teacher_hg4_128/best.pt), against gt_d3_fg10, the same
# recipe from ground truth only. With TEACHER_CACHE=DIR (a complete teacher cache, see
# experiments/lspet128_fpd_pipeline.sh) they read the teacher's heatmaps from it instead of running the teacher.
set -euo pipefail
cd "$(dirname "$0")/.."
base=configs/experiments/lspet128/compare_base.yaml
declare -A SETS=(
  [base]=""
  [fg10]="--set loss.fg_weight=10"
  [lr2e-3_warm]="--set optim.lr=2e-3 --set schedule.warmup_epochs=0.5"
  [bs8]="--set train.batch_size=8"
  [sigma4to2]="--set data.sigma_start=4 --set data.sigma_epochs=3"
  [fg10_lr2e-3_warm]="--set loss.fg_weight=10 --set optim.lr=2e-3 --set schedule.warmup_epochs=0.5"
  [depth3]="--set model.depth=3"
  [gt_d3_fg10]="--set model.depth=3 --set loss.fg_weight=10"
  # batch 128, the batch at which a GPU step stops being bound by the host (docs/experiments.md): the rate it needs
  [gt_d3_fg10_b128]="--set model.depth=3 --set loss.fg_weight=10 --set train.batch_size=128"
  [gt_d3_fg10_b128_lr3e-3]="--set model.depth=3 --set loss.fg_weight=10 --set train.batch_size=128 --set optim.lr=3e-3 --set schedule.warmup_epochs=0.5"
  [fpd_a0.5]="--set model.depth=3 --set loss.fg_weight=10 --set distill.alpha=0.5"
  [fpd_a0.5_clip]="--set model.depth=3 --set loss.fg_weight=10 --set distill.alpha=0.5 --set distill.teacher_norm=clip"
  [fpd_a0.8]="--set model.depth=3 --set loss.fg_weight=10 --set distill.alpha=0.8"
)
teacher=${TEACHER:-runs/lspet128/teacher_hg4_128/best.pt}
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(base fg10 lr2e-3_warm bs8 sigma4to2 fg10_lr2e-3_warm)
mkdir -p runs/lspet128/compare
for v in "${variants[@]}"; do
  out=runs/lspet128/compare/$v
  # finished (the engine's last line): skip, so a restarted pipeline leaves its files alone
  if [ -f "$out/last.pt" ] && grep -q "^done: " "runs/lspet128/compare/$v.log" 2> /dev/null; then continue; fi
  resume=""; [ -f "$out/last.pt" ] && resume="--resume"
  if [ -z "$resume" ]; then rm -rf "$out"; : > "runs/lspet128/compare/$v.log"; fi
  cmd=(train); [[ $v == fpd_* ]] && cmd=(distill --teacher "$teacher" ${TEACHER_CACHE:+--teacher-cache "$TEACHER_CACHE"})
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 posedistill "${cmd[@]}" --config $base --out "$out" --set name=$v ${SETS[$v]} $resume --no-progress \
    >> "runs/lspet128/compare/$v.log" 2>&1  # appended, so a resumed run's log keeps its earlier epochs
done
