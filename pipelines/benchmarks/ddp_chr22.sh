#!/usr/bin/env bash
# Two-GPU pretraining check on real human DNA (configs/dna/human-chr22.yaml, global batch 32 = 2 x 16):
# an uninterrupted run, and a run stopped by SIGTERM halfway and resumed; GPU use sampled every 2 s.
# Writes OUT_DIR/ddp_chr22.json (held-out perplexities, steps, exit codes, mean GPU use, the files in each
# run directory) for comparison with the one-GPU run of the same global batch (pretrain_human_chr22_h100.json).
# Usage: pipelines/benchmarks/ddp_chr22.sh FASTA OUT_DIR [STOP_AFTER_S]   (default: half the uninterrupted run)
set -uo pipefail

FASTA="$1"
OUT_DIR="$2"
STOP_AFTER="${3:-}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT_DIR"
pretrain=("$PYTHON" -m seqmamba.cli pretrain --config configs/dna/human-chr22.yaml --data.fasta "$FASTA"
          --data.batch_size 16 --trainer.devices 2 --trainer.strategy ddp)

nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits -l 2 \
  > "$OUT_DIR/gpu_use.csv" &
sampler=$!

start=$(date +%s)
"${pretrain[@]}" --out "$OUT_DIR/full" > "$OUT_DIR/full.log" 2>&1
full_rc=$?
full_s=$(( $(date +%s) - start ))
STOP_AFTER="${STOP_AFTER:-$(( full_s / 2 ))}"

"${pretrain[@]}" --out "$OUT_DIR/resumed" > "$OUT_DIR/stopped.log" 2>&1 &
run=$!
sleep "$STOP_AFTER"
kill -TERM "$run"
wait "$run"
stopped_rc=$?
"${pretrain[@]}" --out "$OUT_DIR/resumed" --resume last > "$OUT_DIR/resumed.log" 2>&1
resumed_rc=$?
kill "$sampler"

"$PYTHON" - "$OUT_DIR" "$full_rc" "$full_s" "$stopped_rc" "$resumed_rc" <<'EOF'
import csv, json, statistics, sys
from pathlib import Path

out, full_rc, full_s, stopped_rc, resumed_rc = Path(sys.argv[1]), *map(int, sys.argv[2:])
use = {}
for row in csv.reader((out / "gpu_use.csv").open()):
    use.setdefault(int(row[0]), []).append((float(row[1]), float(row[2])))
busy = {gpu: [u for u, memory in rows if memory > 1000] for gpu, rows in use.items()}  # while a run held it

def run(name):
    folder = out / name
    summary = folder / "summary.json"
    return {"summary": json.loads(summary.read_text()) if summary.exists() else None,
            "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())}

report = {"full": {"exit": full_rc, "wall_s": full_s, **run("full")},
          "stopped_exit": stopped_rc, "stopped_tail": (out / "stopped.log").read_text()[-400:],
          "resumed": {"exit": resumed_rc, **run("resumed")},
          "gpu_mean_use_pct_while_held": {g: round(statistics.mean(v), 1) if v else 0.0 for g, v in busy.items()},
          "gpu_samples_held": {g: len(v) for g, v in busy.items()}}
(out / "ddp_chr22.json").write_text(json.dumps(report, indent=2) + "\n")
print(json.dumps(report, indent=2))
EOF
