"""The `seqmamba` command: `pretrain` (LightningCLI) and `data` (fetch, prepare stand-ins)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqmamba.errors import InputError

USAGE = """usage: seqmamba COMMAND ...

commands:
  pretrain --config configs/dna/X.yaml [--section.key value ...]   train a DNA language model
  data fetch NAME --dest DIR                                         download a dataset (e.g. hg38), checksummed, resumable
  data apes [--maf FILE] [--out DIR]                                 ape chr22 FASTAs from the Ensembl alignment

`seqmamba pretrain --help` lists every setting of a run.
"""


def data_command(argv: list[str]) -> None:
    """`seqmamba data ...`: argparse is enough here."""
    from seqmamba.data.maf import DEFAULT_OUT_DIR, extract_maf_species

    parser = argparse.ArgumentParser(prog="seqmamba data")
    sub = parser.add_subparsers(dest="action", required=True)
    fetch_p = sub.add_parser("fetch", help="download a dataset from its manifest (data/manifests/NAME.yaml)")
    fetch_p.add_argument("name", help="manifest name (hg38) or path to a manifest YAML")
    fetch_p.add_argument("--dest", type=Path, required=True)
    fetch_p.add_argument("--base-url", help="mirror to use instead of the manifest's host")
    apes_p = sub.add_parser("apes", help="one FASTA per ape species from maffilter-examples' chr22 alignment")
    apes_p.add_argument("--maf", type=Path, default=Path("/usr/share/doc/maffilter/examples/Gorilla/"
                        "Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz"))
    apes_p.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    if args.action == "fetch":
        from seqmamba.data.fetch import fetch, load_manifest

        for path in fetch(load_manifest(args.name), args.dest, base_url=args.base_url):
            print(path)
    else:
        for name, path in extract_maf_species(args.maf, args.out).items():
            print(f"{name}\t{path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input ends with one line naming the file and the problem, exit status 2."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command == "pretrain":
            from seqmamba.tasks.pretrain import main as pretrain

            pretrain(rest)
        elif command == "data":
            data_command(rest)
        else:
            print(f"seqmamba: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
            return 2
    except InputError as error:
        print(f"seqmamba {command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
