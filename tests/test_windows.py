import numpy as np
import pytest
import torch

from seqmamba.data.intervals import Interval
from seqmamba.data.tokenizer import N, encode, reverse_complement
from seqmamba.data.windows import RandomWindows, TiledWindows
from seqmamba.errors import InputError


def random_bases(length, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), length))


@pytest.fixture
def genome(tmp_path):
    """chr1: 3000 random bases; chr2: 1000 random bases, then 1000 N, then 1000 random bases."""
    sequences = {"chr1": random_bases(3000, 1), "chr2": random_bases(1000, 2) + "N" * 1000 + random_bases(1000, 3)}
    path = tmp_path / "g.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in sequences.items()))
    return path, sequences


INTERVALS = [Interval("chr1", 100, 2900), Interval("chr2", 0, 3000), Interval("chr1", 0, 50)]


def test_items_are_deterministic_per_seed_epoch_and_index(genome):
    path, _ = genome
    first, again = (RandomWindows(path, INTERVALS, 64, 20, seed=7) for _ in range(2))
    assert all(torch.equal(first[i], again[i]) for i in range(20))
    assert first[3].dtype == torch.int64 and first[3].shape == (64,)
    other_seed = RandomWindows(path, INTERVALS, 64, 20, seed=8)
    assert not all(torch.equal(first[i], other_seed[i]) for i in range(20))


def test_epochs_draw_different_windows(genome):
    path, _ = genome
    windows = RandomWindows(path, INTERVALS, 64, 20, seed=0)
    epoch0 = [windows.locate(i) for i in range(20)]
    windows.set_epoch(1)
    epoch1 = [windows.locate(i) for i in range(20)]
    assert epoch0 != epoch1
    windows.set_epoch(0)
    assert [windows.locate(i) for i in range(20)] == epoch0  # a resumed run sees the same data


def test_windows_lie_inside_intervals_and_match_the_genome(genome):
    path, sequences = genome
    windows = RandomWindows(path, INTERVALS, 64, 200, seed=0, rc_prob=0.0, max_n_fraction=1.0)
    for i in range(200):
        window, reverse = windows.locate(i)
        assert not reverse and len(window) == 64
        assert any(w.contig == window.contig and w.start <= window.start and window.end <= w.end
                   for w in INTERVALS[:2])  # the 50-base interval is too short to hold one
        assert windows[i].tolist() == encode(sequences[window.contig][window.start:window.end]).tolist()


def test_mostly_n_windows_are_redrawn(genome):
    path, _ = genome
    region = [Interval("chr2", 0, 3000)]  # a third of its 100-base windows are mostly N
    strict = RandomWindows(path, region, 100, 100, seed=0, max_n_fraction=0.5)
    lenient = RandomWindows(path, region, 100, 100, seed=0, max_n_fraction=1.0)
    strict_n, lenient_n = ([float((w[i] == N).float().mean()) for i in range(100)] for w in (strict, lenient))
    assert max(strict_n) <= 0.5
    assert sum(share > 0.5 for share in lenient_n) > 20


def test_all_n_interval_still_yields_a_window_after_bounded_redraws(genome):
    path, _ = genome
    only_n = RandomWindows(path, [Interval("chr2", 1000, 2000)], 100, 3, seed=0)
    assert all(bool((only_n[i] == N).all()) for i in range(3))


def test_rc_augmentation_returns_the_other_strand(genome):
    path, sequences = genome
    forward = RandomWindows(path, INTERVALS, 64, 30, seed=3, rc_prob=0.0)
    flipped = RandomWindows(path, INTERVALS, 64, 30, seed=3, rc_prob=1.0)
    for i in range(30):
        window, reverse = flipped.locate(i)
        assert reverse and forward.locate(i) == (window, False)
        expected = reverse_complement(encode(sequences[window.contig][window.start:window.end]))
        assert flipped[i].tolist() == expected.tolist()


def test_tiled_labels_cover_each_base_once(genome):
    path, _ = genome
    intervals = [Interval("chr1", 10, 2010), Interval("chr1", 2010, 3000)]
    tiled = TiledWindows(path, intervals, length=101)  # stride 100
    labelled = [(w.contig, p) for w in tiled.windows for p in range(w.start + 1, w.end)]
    assert len(labelled) == len(set(labelled))  # no base is a label twice
    expected = {("chr1", p) for start, n in ((10, 19), (2010, 9)) for p in range(start + 1, start + 1 + n * 100)}
    assert set(labelled) == expected  # every base but each interval's first and its short tail


def test_tiled_skips_mostly_n_and_caps_evenly(genome):
    path, _ = genome
    tiled = TiledWindows(path, [Interval("chr2", 0, 3000)], length=101)
    assert all(not (900 < w.start and w.end < 2100) for w in tiled.windows)
    assert all(float((tiled[i] == N).float().mean()) <= 0.5 for i in range(len(tiled)))
    capped = TiledWindows(path, [Interval("chr1", 0, 3000)], length=101, max_windows=3)
    assert [w.start for w in capped.windows] == [0, 900, 1900]  # 29 tiles cut into runs of 9-10
    assert len(TiledWindows(path, [Interval("chr2", 0, 3000)], length=101, max_windows=100)) == len(tiled)


def test_too_long_window_names_fasta_and_longest_interval(genome):
    path, _ = genome
    with pytest.raises(InputError, match=r"window of 5000 tokens.*longest of 3 intervals has 3000 bases") as error:
        RandomWindows(path, INTERVALS, 5000, 10, seed=0)
    assert str(path) in str(error.value)
    with pytest.raises(InputError, match="window of 5000"):
        TiledWindows(path, INTERVALS, 5000)


def test_windows_load_in_worker_processes(genome):
    path, _ = genome
    windows = RandomWindows(path, INTERVALS, 64, 8, seed=0)
    windows[0]  # opens the FASTA in this process before the workers fork
    loader = torch.utils.data.DataLoader(windows, batch_size=4, num_workers=2)
    assert torch.equal(torch.cat(list(loader)), torch.stack([windows[i] for i in range(8)]))
