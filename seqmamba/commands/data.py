"""`seqmamba data ...`: fetch public datasets, and build the stand-ins this repository tests on."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_APES_MAF = Path("/usr/share/doc/maffilter/examples/Gorilla/"
                        "Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz")


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per dataset job."""
    from seqmamba.data.maf import DEFAULT_OUT_DIR

    parser = argparse.ArgumentParser(prog="seqmamba data")
    sub = parser.add_subparsers(dest="action", required=True)
    fetch_p = sub.add_parser("fetch", help="download a dataset from its manifest (data/manifests/NAME.yaml)")
    fetch_p.add_argument("name", help="manifest name (hg38) or path to a manifest YAML")
    fetch_p.add_argument("--dest", type=Path, required=True)
    fetch_p.add_argument("--base-url", help="mirror to use instead of the manifest's host")
    apes_p = sub.add_parser("apes", help="one FASTA per ape species from maffilter-examples' chr22 alignment")
    apes_p.add_argument("--maf", type=Path, default=DEFAULT_APES_MAF)
    apes_p.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR)
    return parser


def main(argv: list[str]) -> None:
    """Parse and run one data job."""
    args = build_parser().parse_args(argv)
    if args.action == "fetch":
        from seqmamba.data.fetch import fetch, load_manifest

        for path in fetch(load_manifest(args.name), args.dest, base_url=args.base_url):
            print(path)
    elif args.action == "apes":
        from seqmamba.data.maf import extract_maf_species

        for name, path in extract_maf_species(args.maf, args.out).items():
            print(f"{name}\t{path}")
