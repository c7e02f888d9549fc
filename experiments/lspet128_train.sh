#!/usr/bin/env bash
# Issue 12: start or resume one long 128-input run in the background, one thread (two runs side by side give
# more samples/s in total than one 2-thread run on this 2-core CPU: benchmarks/train_throughput.py).
#   bash experiments/lspet128_train.sh teacher_hg4_128            # ground truth: configs/experiments/lspet128/NAME.yaml
#   bash experiments/lspet128_train.sh fpd_hg2_64 --teacher runs/lspet128/teacher_hg4_128/best.pt   # distill
# Resumes from runs/lspet128/NAME/last.pt, or from its snapshot.pt (kept in git) when last.pt is lost.
# Console output: runs/lspet128/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
out=runs/lspet128/$name
cmd=train; [[ " $* " == *" --teacher "* || " $* " == *" --teacher-cache "* ]] && cmd=distill
resume=""; { [ -f "$out/last.pt" ] || [ -f "$out/snapshot.pt" ]; } && resume="--resume"
mkdir -p runs/lspet128
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
nohup posedistill $cmd --config "configs/experiments/lspet128/$name.yaml" --out "$out" $resume --no-progress "$@" \
  >> "runs/lspet128/$name.log" 2>&1 &
echo "$name: pid $! ($cmd${resume:+, resumed}); log runs/lspet128/$name.log"
