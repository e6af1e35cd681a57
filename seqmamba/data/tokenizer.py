"""Character tokenizer for DNA: one token per base, so a window's positions are genome positions.

The vocabulary is fixed (checkpoints depend on it):

    PAD=0  BOS=1 (=CLS)  EOS=2 (=SEP)  UNK=3  A=4  C=5  G=6  T=7  N=8      VOCAB_SIZE = 9

Lower case (soft-masked repeats) folds to upper case, U reads as T, the IUPAC ambiguity codes
R Y S W K M B D H V read as N, and any other byte is UNK. `encode` returns uint8 ids (one byte
per base); callers cast to int64 where torch needs it.
"""

import numpy as np

PAD, BOS, EOS, UNK = 0, 1, 2, 3
CLS, SEP = BOS, EOS
A, C, G, T, N = 4, 5, 6, 7, 8
VOCAB_SIZE = 9
VOCAB: dict[str, int] = {
    "[PAD]": PAD, "[BOS]": BOS, "[EOS]": EOS, "[UNK]": UNK, "A": A, "C": C, "G": G, "T": T, "N": N,
}


def _encode_table() -> np.ndarray:
    table = np.full(256, UNK, dtype=np.uint8)
    for letters, token in (("A", A), ("C", C), ("G", G), ("TU", T), ("NRYSWKMBDHV", N)):
        for letter in letters:
            table[ord(letter)] = table[ord(letter.lower())] = token
    return table


_ENCODE = _encode_table()  # byte -> token id
_DECODE = np.frombuffer(b"-<>?ACGTN", dtype=np.uint8)  # token id -> one printable byte
_COMPLEMENT = np.array([PAD, BOS, EOS, UNK, T, G, C, A, N], dtype=np.uint8)


def encode(seq: str | bytes) -> np.ndarray:
    """Token ids (uint8, one per character) of a sequence, through one table lookup so a chromosome is fast."""
    raw = seq.encode("ascii", "replace") if isinstance(seq, str) else seq  # non-ASCII -> '?' -> UNK
    return _ENCODE[np.frombuffer(raw, dtype=np.uint8)]


def decode(ids: np.ndarray) -> str:
    """Readable text of 1-D token ids, one character per token (PAD '-', BOS '<', EOS '>', UNK '?')."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= VOCAB_SIZE):
        raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE}), got {ids.min()}..{ids.max()}")
    return _DECODE[ids].tobytes().decode("ascii")


def reverse_complement(ids: np.ndarray) -> np.ndarray:
    """The other strand's ids (last axis reversed, A<->T, C<->G; N and specials kept), same dtype."""
    ids = np.asarray(ids)
    return _COMPLEMENT[ids[..., ::-1]].astype(ids.dtype, copy=False)
