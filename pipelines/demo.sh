#!/usr/bin/env bash
# `make demo`: the four jobs on CPU, on data the project ships or makes, in runs/demo/ (about 10 minutes on 2 cores).
#   1 pretrain a DNA model on lambda phage (data/genomes/) and report the test split from best.ckpt;
#   2 fine-tune it to tell lambda phage from human chr22 (maffilter-examples), classify simulated reads;
#   3 train a tiny U-Net on espeak-ng digits and generate clips;
#   4 train the digit classifier and score the clips beside the digits' own train and test rows.
# Each training run writes RUN_DIR/report.html; `seqmamba app --runs runs/demo` shows them all.
# An earlier runs/demo is started over (--overwrite deletes only the files a run writes).
set -euo pipefail
SEQMAMBA=${SEQMAMBA:-seqmamba}
PYTHON=${PYTHON:-python}
RUNS=runs/demo
DATA=data/cache/demo
mkdir -p "$RUNS" "$DATA"
step() { echo; echo "== $* =="; }

step "1/4 pretrain a DNA model on the lambda phage genome"
$SEQMAMBA pretrain --config configs/dna/lambda-demo.yaml --out "$RUNS/pretrain" --overwrite true

step "2/4 fine-tune: lambda phage vs human chr22, then classify simulated reads"
[ -f "$DATA/apes/human.fa" ] || $SEQMAMBA data apes --out "$DATA/apes" >/dev/null
printf 'species\tfasta\nlambda_phage\t%s\nhuman_chr22\t%s\n' "$PWD/data/genomes/lambda_phage.fa" "$PWD/$DATA/apes/human.fa" \
    > "$DATA/species.tsv"
$SEQMAMBA finetune --config configs/demo/species.yaml --out "$RUNS/finetune" --overwrite true
$PYTHON pipelines/demo_reads.py "$DATA/species.tsv" "$DATA/reads.fq.gz"
mkdir -p "$RUNS/classify"
$SEQMAMBA classify "$DATA/reads.fq.gz" --ckpt "$RUNS/finetune/checkpoints/best.ckpt" --out "$RUNS/classify/predictions.tsv"

step "3/4 audio: espeak-ng digits, a tiny U-Net, generated clips"
[ -f "$DATA/digits/testing_list.txt" ] || $SEQMAMBA data make-digits --out "$DATA/digits" --voices 12 --per_voice 1
$SEQMAMBA audio train --config configs/demo/audio.yaml --data.root "$DATA/digits" --out "$RUNS/audio" --overwrite true
rm -f "$RUNS/audio/samples/"sample_*.wav "$RUNS/audio/samples/"{samples.tsv,spectrograms.png,scores.json}  # the last demo's
$SEQMAMBA audio generate --ckpt "$RUNS/audio/checkpoints/best.ckpt" --out "$RUNS/audio/samples" --n 4 --seconds 0.5 --device cpu

step "4/4 the digit classifier, and scores of the generated clips"
$SEQMAMBA sc09 train-classifier --config configs/demo/digit-classifier.yaml --data.root "$DATA/digits" \
    --out "$RUNS/digit-classifier" --overwrite true
$SEQMAMBA sc09 score --ckpt "$RUNS/digit-classifier/checkpoints/best.ckpt" --samples "$RUNS/audio/samples" \
    --rows train,test --out "$RUNS/audio/samples/scores.json" --device cpu
$SEQMAMBA report "$RUNS/audio" >/dev/null  # again, now with the clips

echo
echo "Reports: $RUNS/*/report.html (e.g. $RUNS/pretrain/report.html)"
echo "Look at everything in the browser: $SEQMAMBA app --runs $RUNS   (then open http://127.0.0.1:8765/)"
