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
    digits_p = sub.add_parser("make-digits", help="SC09 stand-in: espeak-ng voices saying zero..nine, test voices unseen")
    digits_p.add_argument("--out", type=Path, required=True, help="new or empty folder")
    digits_p.add_argument("--voices", type=int, default=200, help="speakers (accent + voice variant); at least 3")
    digits_p.add_argument("--per-voice", type=int, default=3, help="takes of each digit per voice")
    digits_p.add_argument("--seed", type=int, default=0)
    digits_p.add_argument("--clean", action="store_true",
                          help="one loudness, no background noise, FLAC: quickest to learn, small enough to carry")
    piano_p = sub.add_parser("make-piano", help="YouTubeMix stand-in: music21 piano scores through fluidsynth")
    piano_p.add_argument("--out", type=Path, required=True, help="new or empty folder")
    piano_p.add_argument("--minutes", type=int, default=20, help="one-minute files to render; at least 3")
    piano_p.add_argument("--seed", type=int, default=0)
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
    elif args.action == "make-digits":
        from seqmamba.data.digits import make_digits

        counts = make_digits(args.out, voices=args.voices, per_voice=args.per_voice, seed=args.seed,
                             clean=args.clean)
        print(f"{args.out}: " + ", ".join(f"{n} {split} clips" for split, n in counts.items()))
    elif args.action == "make-piano":
        from seqmamba.data.piano import make_piano

        counts = make_piano(args.out, minutes=args.minutes, seed=args.seed)
        print(f"{args.out}: " + ", ".join(f"{n} {split} files" for split, n in counts.items()))
