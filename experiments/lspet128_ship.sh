#!/usr/bin/env bash
# Issue 12, after experiments/lspet128_fpd_pipeline.sh has finished: choose the student that ships, ship it with the
# teacher, and regenerate every figure and picture that depends on the shipped weights. Each step skips what is
# already done where it can; run it on a quiet machine (it times latency and the quickstart).
#
#   1. the shipped student: the finished 128-input student run with the best validation PCK@0.2 (chosen on
#      validation only; the test slice is for the figures) -> runs/lspet128/ship_choice.json
#   2. its person scorer (python -m posedistill.inference.scorer_fit, about 6 minutes), unless one for these weights is there
#   3. docs/lspet128_val_curves.png (every 128-input run and the 4-epoch comparison runs)
#   4. posedistill report: the 128-input runs first, then the 64-input sweep -> docs/results.md and plots
#   5. tools/ship_weights.py: slim student and teacher, sha256 manifest, scorer sidecar, docs/model_card.md
#   6. tools/draw_test_predictions.py -> docs/student_predictions.jpg (look at it)
#   7. posedistill quickstart on the new weights, timed -> runs/quickstart-lspet128/ (figures for the README)
#   8. with BENCHMARKS=1: issue 14's benchmarks with the shipped weights (localisation, video, throughput, serve)
#
#   bash experiments/lspet128_ship.sh 2>&1 | tee runs/lspet128/ship.log
#   SHIP_RUN=NAME SHIP_NOTE="why" bash experiments/lspet128_ship.sh ...   ships runs/lspet128/NAME instead (say why)
#   SHIP_TEACHER=teacher_hg4_128_restart ...                         ships that teacher (default teacher_hg4_128)
set -euo pipefail
cd "$(dirname "$0")/.."
R=runs/lspet128
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 OMP_NUM_THREADS=2
say() { echo "[$(date -u +%F\ %T)] $*"; }
TEACHER=${SHIP_TEACHER:-teacher_hg4_128}  # the teacher that ships beside the student
TEACHERS=(teacher_hg4_128 teacher_hg4_128_restart)  # curves and report rows (those that exist)
# the long 128-input student runs (step 1 chooses among the finished ones), then the fine-tunes with negatives
STUDENTS=(student_hg2_64 fpd_hg2_64 fpd_hg2_64_init fpd_hg2_64_init_a0 fpd_hg2_64_restart student_hg2_64_restart)
FINETUNES=(fpd_hg2_64_neg fpd_hg2_64_neg_control fpd_hg2_64_neg04 fpd_hg2_64_restart_neg)
if pgrep -f "posedistill (train|distill)|teacher_cache" > /dev/null; then
  say "training is still running: ship after it finishes (the timings need a quiet machine)"; exit 1
fi

# 1
python - "${STUDENTS[@]}" <<'EOF'
import csv, json, sys, yaml
from pathlib import Path
root = Path("runs/lspet128")
rows = []
for name in sys.argv[1:]:
    run = root / name
    if not (run / "log.csv").is_file() or not (run / "best.pt").is_file():
        continue
    log = list(csv.DictReader(open(run / "log.csv")))
    epochs = yaml.safe_load(open(run / "config.yaml"))["train"]["epochs"]
    if len(log) < epochs:
        print(f"{name}: not finished ({len(log)}/{epochs} epochs), left out")
        continue
    rows.append({"run": name, "best_val_pck": max(float(r["val_pck"]) for r in log), "epochs": epochs})
if not rows:
    raise SystemExit("no finished student run under runs/lspet128")
best = max(rows, key=lambda r: r["best_val_pck"])
(root / "ship_choice.json").write_text(json.dumps({"chosen": best, "candidates": rows}, indent=1) + "\n")
print("shipping", best)
EOF
S=$(python -c "import json; print(json.load(open('$R/ship_choice.json'))['chosen']['run'])")
if [ -n "${SHIP_RUN:-}" ]; then  # a choice made on another validation measure (say which in SHIP_NOTE)
  S=$SHIP_RUN
  python - "$S" <<'EOF2'
import json, sys
from pathlib import Path
path = Path("runs/lspet128/ship_choice.json")
choice = json.loads(path.read_text())
choice["override"] = {"run": sys.argv[1], "why": "SHIP_RUN (see SHIP_NOTE in the model card)"}
path.write_text(json.dumps(choice, indent=1) + "\n")
EOF2
fi
say "student that ships: $S"

# 2
if ! python -c "
import sys
from posedistill.inference.person_score import scorer_for
sys.exit(0 if scorer_for('$R/$S/best.pt', 14) else 1)" 2> /dev/null; then
  say "fitting the person scorer for $S"
  python -m posedistill.inference.scorer_fit --weights "$R/$S/best.pt" --threads 2 --no-progress
fi

# 3
python - "${TEACHERS[@]}" "${STUDENTS[@]}" "${FINETUNES[@]}" <<'EOF'
import sys
from pathlib import Path
from posedistill.report.plots import plot_curves
from posedistill.report.runs import load_runs
root = Path("runs/lspet128")
dirs = [root / n for n in sys.argv[1:] if (root / n / "log.csv").is_file()]
dirs += sorted(p for p in (root / "compare").glob("*") if (p / "log.csv").is_file())
plot_curves(load_runs(dirs), Path("docs/lspet128_val_curves.png"),
            command="experiments/lspet128_ship.sh (runs/lspet128/*/log.csv)")
print("wrote docs/lspet128_val_curves.png")
EOF

# 4
long=()
for n in "${TEACHERS[@]}" "${STUDENTS[@]}" "${FINETUNES[@]}"; do
  if [ -f "$R/$n/eval_test.json" ]; then long+=("$R/$n"); fi
done
# the 64-input sweep of issue 7, the cheap trade-off curve (its input size is in every row)
sweep=(teacher_hg4_128 student_hg2_64 fpd_hg2_64 fpd_hg2_64_peak fpd_hg2_64_clip fpd_hg2_64_init fpd_hg2_64_init_a0
       fpd_hg2_64_init_clip fpd_hg2_64_a0.25 fpd_hg2_64_a0.75 fpd_hg2_64_a1.0 student_hg1_64 fpd_hg1_64
       student_hg2_32 fpd_hg2_32 student_hg1_32 fpd_hg1_32 bin_hg2_64 fpd_hg2_64_init_clip_ort
       fpd_hg2_64_init_clip_int8)
posedistill report "${long[@]}" "${sweep[@]/#/runs/cpu/}" --out docs/ --threads 2 --repeats 20

# 5
python tools/ship_weights.py --student "$R/$S" --teacher "$R/$TEACHER" --threads 2 \
  --note "${SHIP_NOTE:-Shipped as the 128-input student with the best validation PCK@0.2 of the runs in runs/lspet128 ($S).}"

# 6
python tools/draw_test_predictions.py --out docs/student_predictions.jpg

# 7
rm -rf runs/quickstart-lspet128
start=$(date +%s)
posedistill quickstart --out runs/quickstart-lspet128
say "quickstart: $(( $(date +%s) - start )) s; table in runs/quickstart-lspet128/results.md"

# 8 (BENCHMARKS=1): issue 14's benchmarks again with the shipped weights (about 25 minutes; quiet machine)
if [ "${BENCHMARKS:-0}" = 1 ]; then
  python benchmarks/localisation.py --split test --methods pose --threads 2
  python benchmarks/video_tracking.py --split test --clips 20 --frames 120
  python benchmarks/predict_throughput.py --threads 2 --workers 2
  python benchmarks/serve_load.py --clients 8 --requests 50 --out benchmarks/results/serve_load_box.json
  python benchmarks/serve_load.py --clients 8 --requests 50 --no-box --out benchmarks/results/serve_load_nobox.json
  say "benchmarks done: benchmarks/results/{localisation_test,video_tracking_test,predict_throughput,serve_load_*}.json"
fi
