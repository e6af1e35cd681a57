import pytest

from seqmamba.data.intervals import Interval, read_bed_splits, split_by_contig, split_by_fraction
from seqmamba.errors import InputError

LENGTHS = {"chr1": 1000, "chr2": 500, "chr3": 40}


def write_bed(tmp_path, text):
    path = tmp_path / "human-sequences.bed"
    path.write_text(text)
    return path


def test_bed_parsing_skips_headers_and_maps_validation(tmp_path):
    bed = write_bed(tmp_path, "# comment\ntrack name=x\nbrowser position chr1\n\n"
                              "chr1\t0\t600\ttrain\nchr1\t600\t800\tvalidation\nchr2\t10\t500\ttest\nchr1\t800\t1000\tvalid\n")
    splits = read_bed_splits(bed, LENGTHS)
    assert splits == {"train": [Interval("chr1", 0, 600)],
                      "valid": [Interval("chr1", 600, 800), Interval("chr1", 800, 1000)],
                      "test": [Interval("chr2", 10, 500)]}


def test_contig_not_in_fasta_names_line_and_existing_contigs(tmp_path):
    bed = write_bed(tmp_path, "chr1\t0\t10\ttrain\n1\t0\t10\ttrain\n")
    with pytest.raises(InputError) as error:
        read_bed_splits(bed, LENGTHS)
    message = str(error.value)
    assert str(bed) in message and "line 2" in message and "'1'" in message and "chr1, chr2" in message
    assert "did you mean 'chr1'" in message


@pytest.mark.parametrize("line, problem", [
    ("chr1\t0\t1001\ttrain", "past the end"),
    ("chr1\t5\t5\ttrain", "start < end"),
    ("chr1\tzero\t5\ttrain", "integers"),
    ("chr1\t0\t5\tholdout", "unknown split"),
    ("chr1\t0\t5", "4 tab-separated columns"),
])
def test_bad_bed_lines(tmp_path, line, problem):
    bed = write_bed(tmp_path, line + "\n")
    with pytest.raises(InputError, match=problem) as error:
        read_bed_splits(bed, LENGTHS)
    assert "line 1" in str(error.value)


def test_contig_split_holds_out_whole_contigs():
    splits = split_by_contig(LENGTHS, ["chr2"], ["chr3"])
    assert splits == {"train": [Interval("chr1", 0, 1000)], "valid": [Interval("chr2", 0, 500)],
                      "test": [Interval("chr3", 0, 40)]}


def test_contig_split_rejects_unknown_and_overlapping_contigs():
    with pytest.raises(InputError, match="'chrX' is not in the FASTA") as error:
        split_by_contig(LENGTHS, ["chrX"], [], genome_name="hg38.fa")
    assert str(error.value).startswith("hg38.fa:")
    with pytest.raises(InputError, match="both"):
        split_by_contig(LENGTHS, ["chr2"], ["chr2"])


def test_fraction_split_is_disjoint_and_covers_every_contig():
    splits = split_by_fraction(LENGTHS, 0.1, 0.2, min_part=20)
    assert splits["valid"] == [Interval("chr1", 700, 800), Interval("chr2", 350, 400)]
    assert splits["test"] == [Interval("chr1", 800, 1000), Interval("chr2", 400, 500)]
    assert Interval("chr3", 0, 40) in splits["train"]  # its 4-base valid tail would hold no window
    for contig, length in LENGTHS.items():
        covered = sorted((i.start, i.end) for part in splits.values() for i in part if i.contig == contig)
        assert covered[0][0] == 0 and covered[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))  # no gap, no overlap


def test_fraction_split_rejects_fractions_that_leave_no_train():
    with pytest.raises(ValueError, match="sum to less than 1"):
        split_by_fraction(LENGTHS, 0.5, 0.5)
