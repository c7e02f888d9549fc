"""Issue 12 recipe comparison: validation PCK@0.2 after each epoch of the short hg2_64 runs at 128 input.

Reads runs/lspet128/compare/*/log.csv and config.yaml; prints a markdown table (one row per variant, the
settings that differ from the base, then val PCK per epoch) and writes runs/lspet128/compare/summary.json.

    python experiments/lspet128_compare_table.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1] / "runs" / "lspet128" / "compare"
KEYS = [("optim", "lr"), ("train", "batch_size"), ("schedule", "warmup_epochs"), ("loss", "fg_weight"),
        ("data", "sigma_start"), ("model", "depth")]
DEFAULTS = {("model", "depth"): 4}  # runs made before the key existed


def _get(cfg: dict, section: str, key: str):
    return cfg.get(section, {}).get(key, DEFAULTS.get((section, key)))


def main() -> None:
    base = yaml.safe_load((ROOT / "base" / "config.yaml").read_text())
    rows, summary = [], {}
    width = 0
    for run in sorted(p for p in ROOT.iterdir() if (p / "log.csv").is_file()):
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        diff = [f"{s}.{k}={_get(cfg, s, k)}" for s, k in KEYS if _get(cfg, s, k) != _get(base, s, k)]
        with open(run / "log.csv") as handle:
            log = list(csv.DictReader(handle))
        pck = [float(r["val_pck"]) for r in log if r["val_pck"]]
        speed = [float(r["samples_per_s"]) for r in log]
        width = max(width, len(pck))
        summary[run.name] = {"settings": diff, "val_pck": pck}
        rows.append((run.name, ", ".join(diff) or "Adam 1e-3, batch 16, plain MSE, depth 4", pck))
    print("| variant | settings | " + " | ".join(f"epoch {i + 1}" for i in range(width)) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in range(width)) + " |")
    for name, diff, pck in rows:
        cells = [f"{p:.1f}" for p in pck] + [""] * (width - len(pck))
        print(f"| {name} | {diff} | " + " | ".join(cells) + " |")
    (ROOT / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
