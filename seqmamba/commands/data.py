"""`seqmamba data fetch | apes | make-digits | make-piano`: public datasets, and the stand-ins this repository tests on."""

from __future__ import annotations

from pathlib import Path

DEFAULT_APES_MAF = Path("/usr/share/doc/maffilter/examples/Gorilla/"
                        "Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz")
DEFAULT_APES_OUT = Path("data/cache/apes")


def fetch(name: str, *, out: Path, base_url: str | None = None) -> list[Path]:
    """Download a dataset from its manifest (seqmamba/data/manifests/NAME.yaml), checksums verified.

    Args:
        name: manifest name (hg38) or path to a manifest YAML
        out: folder the files land in
        base_url: mirror to use instead of the manifest's host
    """
    from seqmamba.data import fetch as fetching

    paths = fetching.fetch(fetching.load_manifest(name), Path(out), base_url=base_url)
    print("\n".join(map(str, paths)))
    return paths


def apes(maf: Path = DEFAULT_APES_MAF, out: Path = DEFAULT_APES_OUT) -> dict[str, Path]:
    """One FASTA per ape species from maffilter-examples' chr22 alignment, with summary.tsv and species.tsv.

    Args:
        maf: MAF alignment, plain or gzip
        out: folder for <species>.fa, summary.tsv and species.tsv (the manifest `seqmamba finetune` reads)
    """
    from seqmamba.data.maf import SUMMARY_NAME, extract_maf_species

    paths = extract_maf_species(Path(maf), Path(out))
    print("\n".join(f"{name}\t{path}" for name, path in paths.items()))
    print((Path(out) / SUMMARY_NAME).read_text(), end="")
    return paths


def make_digits(*, out: Path, voices: int = 200, per_voice: int = 3, seed: int = 0,
                clean: bool = False) -> dict[str, int]:
    """SC09 stand-in: espeak-ng voices saying zero..nine, test voices unseen in training.

    Args:
        out: new or empty folder
        voices: speakers (accent + voice variant); at least 3
        per_voice: takes of each digit per voice
        seed: random seed
        clean: one loudness, no background noise, FLAC: quickest to learn, small enough to carry
    """
    from seqmamba.data import digits

    counts = digits.make_digits(out, voices=voices, per_voice=per_voice, seed=seed, clean=clean)
    print(f"{out}: " + ", ".join(f"{n} {split} clips" for split, n in counts.items()))
    return counts


def make_piano(*, out: Path, minutes: int = 20, seed: int = 0) -> dict[str, int]:
    """YouTubeMix stand-in: music21 piano scores rendered through fluidsynth.

    Args:
        out: new or empty folder
        minutes: one-minute files to render; at least 3
        seed: random seed
    """
    from seqmamba.data import piano

    counts = piano.make_piano(out, minutes=minutes, seed=seed)
    print(f"{out}: " + ", ".join(f"{n} {split} files" for split, n in counts.items()))
    return counts
