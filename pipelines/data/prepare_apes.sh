#!/usr/bin/env bash
# Real ape DNA for the default runs: per-species FASTA (human, chimpanzee, gorilla, orangutan)
# from the Ensembl EPO chr22 alignment that Debian's maffilter-examples package ships.
# Usage: pipelines/data/prepare_apes.sh [OUT_DIR]   (default data/cache/apes, git-ignored)
set -euo pipefail

MAF="${MAF:-/usr/share/doc/maffilter/examples/Gorilla/Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz}"
OUT_DIR="${1:-data/cache/apes}"
PYTHON="${PYTHON:-python}"

if [[ ! -f "$MAF" ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "$MAF is missing: installing maffilter-examples" >&2
    apt-get install -y maffilter-examples >&2 || { apt-get update >&2 && apt-get install -y maffilter-examples >&2; }
  else
    echo "$MAF is missing: run 'sudo apt-get install maffilter-examples' (Debian/Ubuntu), or set MAF=path" >&2
    exit 1
  fi
fi

"$PYTHON" -m seqmamba.cli data apes --maf "$MAF" --out "$OUT_DIR"
echo "wrote $(ls "$OUT_DIR"/*.fa | tr '\n' ' ')" >&2
