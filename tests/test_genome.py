import gzip

import pytest
from Bio import bgzf

from seqmamba.data.genome import GenomeReader, contig_lengths, open_genome
from seqmamba.errors import InputError

FASTA = ">chr1 first\nACGTACGTAC\nGTAC\n>empty\n>chr2\nNNNNacgt\n"


def test_plain_fasta_lengths_skip_empty_records(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text(FASTA)
    genome = open_genome(path)
    assert contig_lengths(genome) == {"chr1": 14, "chr2": 8}
    assert genome["chr1"][8:12] == "ACGT"


def test_bgzip_fasta_reads_like_plain(tmp_path):
    path = tmp_path / "g.fa.gz"
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write(FASTA.encode())
    genome = open_genome(path)
    assert contig_lengths(genome) == {"chr1": 14, "chr2": 8}
    assert GenomeReader(path).fetch("chr2", 2, 6) == "NNac"


def test_plain_gzip_names_the_file_and_says_bgzip(tmp_path):
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(FASTA.encode()))
    with pytest.raises(InputError, match="bgzip") as error:
        open_genome(path)
    assert str(path) in str(error.value)


def test_empty_file(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text("")
    with pytest.raises(InputError, match="empty file"):
        open_genome(path)


def test_no_header(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text("\nACGTACGT\n>chr1\nACGT\n")
    with pytest.raises(InputError, match=r"line 2: no FASTA header"):
        open_genome(path)


def test_only_empty_records(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text(">a\n>b\n")
    with pytest.raises(InputError, match="no sequence"):
        open_genome(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file") as error:
        open_genome(tmp_path / "absent.fa")
    assert "absent.fa" in str(error.value)


def test_reader_reopens_after_unpickling(tmp_path):
    import pickle

    path = tmp_path / "g.fa"
    path.write_text(FASTA)
    reader = GenomeReader(path)
    assert reader.fetch("chr1", 0, 4) == "ACGT"  # opened in this process
    clone = pickle.loads(pickle.dumps(reader))  # what a spawned DataLoader worker receives
    assert clone.fetch("chr1", 10, 14) == "GTAC"
