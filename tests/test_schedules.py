"""Warm-up as a fraction of the run's own steps, in every recipe; runs that learn nothing say so."""

import pytest

from seqmamba.nn.resnext import ResNeXtConfig
from seqmamba.tasks.digit_classifier import DigitClassifierTask
from seqmamba.tasks.optim import warmup_length
from seqmamba.training.summaries import chance_warning


def test_warmup_is_a_fraction_of_the_run_and_fixed_counts_never_pass_half_of_it():
    assert warmup_length(30, 0.1) == 3 and warmup_length(10_000, 0.05) == 500
    assert warmup_length(30, 0.0) == 0 and warmup_length(3, 0.01) == 1  # some warm-up, however short the run
    assert warmup_length(30, 0.1, warmup_steps=100) == 15  # an old config's 100 steps in a 30-step run
    assert warmup_length(1000, 0.1, warmup_steps=100) == 100


class FakeTrainer:
    estimated_stepping_batches = 30  # a small set: one batch per epoch, 30 epochs


def test_digit_classifier_reaches_its_peak_rate_early_in_a_short_run():
    tiny = ResNeXtConfig(depth=11, cardinality=2, base_width=4, widen_factor=1, stem_width=8)
    task = DigitClassifierTask(tiny, lr=0.1)
    task.trainer = FakeTrainer()  # what configure_optimizers reads
    setup = task.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(30):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.1) and rates.index(max(rates)) == 2  # peak after 10% of the run
    assert rates[-1] < 0.01  # and decayed by the end


@pytest.mark.parametrize("settings", [{"warmup_fraction": 1.5}, {"warmup_steps": -1}])
def test_tasks_refuse_a_warmup_they_cannot_use(settings):
    with pytest.raises(Exception, match="warmup"):
        DigitClassifierTask(ResNeXtConfig(depth=11, cardinality=2, base_width=4, widen_factor=1, stem_width=8),
                            **settings)


def test_a_score_no_better_than_chance_is_named_and_a_better_one_is_not():
    warning = chance_warning("accuracy", 0.1, 0.1, "chance", higher_is_better=True)
    assert warning.startswith("warning: held-out accuracy 0.1000 is no better than chance (0.1)")
    assert chance_warning("accuracy", 0.35, 0.1, "chance", higher_is_better=True) is None
    assert "uniform" in chance_warning("bits per sample", 9.4, 8.0, "a uniform guess", higher_is_better=False)
    assert chance_warning("bits per sample", 4.2, 8.0, "a uniform guess", higher_is_better=False) is None
