import numpy as np
import pytest

from seqmamba.data import tokenizer
from seqmamba.data.tokenizer import A, C, G, N, T, UNK, VOCAB, VOCAB_SIZE, decode, encode, reverse_complement


def test_vocabulary_is_the_documented_one():
    assert VOCAB == {"[PAD]": 0, "[BOS]": 1, "[EOS]": 2, "[UNK]": 3, "A": 4, "C": 5, "G": 6, "T": 7, "N": 8}
    assert VOCAB_SIZE == len(VOCAB) == 9
    assert tokenizer.CLS == tokenizer.BOS and tokenizer.SEP == tokenizer.EOS


def test_round_trip_and_dtype():
    ids = encode("ACGTNNACGT")
    assert ids.dtype == np.uint8
    assert decode(ids) == "ACGTNNACGT"
    assert decode(encode(b"GATTACA")) == "GATTACA"


def test_lower_case_folds_to_upper():
    assert encode("acgtn").tolist() == encode("ACGTN").tolist() == [A, C, G, T, N]


def test_iupac_codes_are_n_and_u_is_t():
    assert set(encode("RYSWKMBDHVryswkmbdhv").tolist()) == {N}
    assert encode("Uu").tolist() == [T, T]


def test_other_characters_are_unk():
    assert encode("-.*X1 é").tolist() == [UNK] * 7  # é: one character, one token
    assert decode([0, 1, 2, 3]) == "-<>?"


def test_decode_rejects_ids_outside_the_vocabulary():
    with pytest.raises(ValueError):
        decode([VOCAB_SIZE])


def test_reverse_complement_known_example_and_involution():
    assert decode(reverse_complement(encode("AACGTN"))) == "NACGTT"
    ids = encode("GATTACAnNRX" * 7)
    assert np.array_equal(reverse_complement(reverse_complement(ids)), ids)
    wide = ids.astype(np.int64)
    assert reverse_complement(wide).dtype == np.int64
    specials = np.array([0, 1, 2, 3])
    assert reverse_complement(specials).tolist() == [3, 2, 1, 0]


def test_reverse_complement_works_on_batches_along_the_last_axis():
    batch = np.stack([encode("AACG"), encode("TTTC")])
    assert [decode(row) for row in reverse_complement(batch)] == ["CGTT", "GAAA"]


def test_megabase_encodes_as_a_vectorized_lookup():
    ids = encode("ACGTN" * 200_000)  # a Python loop would take about a second; this is milliseconds
    assert len(ids) == 1_000_000 and np.bincount(ids).tolist()[A:] == [200_000] * 5
