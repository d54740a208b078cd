"""Demonstrations written by imperfect training labelers: each slip at its rate, each seen by the checker."""

import random

import numpy as np
import pytest

from rlhf_lib import demonstrators as DM
from rlhf_lib.checks import check
from rlhf_lib.labelers import gold_utility
from rlhf_lib.tasks import make_task


@pytest.fixture(scope="module")
def tasks(world):
    rng = random.Random(3)
    return [make_task(world, rng) for _ in range(1500)]


@pytest.fixture(scope="module")
def can(world, tasks):
    return [DM.eligible(world, t, oracle) for t, oracle in tasks]


def only(slip, rate):
    return DM.WritingProfile("L00", {s: (rate if s == slip else 0.0) for s in DM.SLIPS})


@pytest.mark.parametrize("slip", DM.SLIPS)
def test_each_slip_appears_at_its_configured_rate(world, tasks, can, slip):
    rng = random.Random(0)
    made = [slip in DM.write(world, t, oracle, only(slip, 0.3), rng)[1]
            for (t, oracle), e in zip(tasks, can) if e[slip]]
    assert len(made) >= 60  # the slip can happen on a fair share of prompts
    # binomial: 0.3 +- 4 standard errors
    assert abs(np.mean(made) - 0.3) < 4 * np.sqrt(0.3 * 0.7 / len(made))


@pytest.mark.parametrize("slip", DM.SLIPS)
def test_the_checker_catches_each_slip_on_its_own_axis(world, tasks, slip):
    axis = DM.SLIP_AXIS[slip]
    seen, made = 0, 0
    for t, oracle in tasks[:400]:
        raw = DM.SLIP_FUNCTIONS[slip](world, t, oracle, random.Random(seen))
        made += raw is not None
        text = DM.apply_slip(world, t, oracle, slip, random.Random(seen))  # None where the checker does not see it
        if text is None:
            continue
        before, after = check(world, t, oracle), check(world, t, text)
        # the oracle is clean on the axis, the slipped answer is not, and the gold utility drops
        if axis == "hallucinates":
            assert not before.hallucinates and after.hallucinates, text
        elif axis in ("attempts", "appropriate"):
            assert getattr(before, axis) and not getattr(after, axis), text
        else:
            assert getattr(after, axis) < getattr(before, axis), text
        assert gold_utility(after, text) < gold_utility(before, oracle)
        assert DM.slip_signs(t, after, text)[slip] and not DM.slip_signs(t, before, oracle)[slip]
        seen += 1
    assert seen >= 10 and seen >= 0.9 * made  # nearly every slip a writer makes is visible


def test_rude_slip_reads_rude_and_a_drift_answers_another_question(world):
    rng = random.Random(0)
    task, oracle = make_task(world, rng, category="open_qa", kind="plain")
    rude = DM.rude(world, task, oracle, rng)
    assert any(w in rude.lower() for w in world.rude_words) and oracle.strip().rstrip(".") in rude
    drift = DM.drifts(world, task, oracle, rng)
    assert task.subject.split()[0] in drift and task.answer not in drift  # same subject, not the asked fact


def test_a_writer_with_zero_rates_writes_the_oracle(world, tasks):
    perfect = DM.WritingProfile("L01", {s: 0.0 for s in DM.SLIPS})
    rng = random.Random(0)
    assert all(DM.write(world, t, oracle, perfect, rng) == (oracle, []) for t, oracle in tasks[:300])
    # and slip_scale 0 makes every writer perfect
    assert all(r == 0.0 for p in DM.writing_profiles(["a", "b", "c"], slip_scale=0.0) for r in p.rates.values())


def test_writers_are_heavy_tailed_around_the_paper_rates():
    ids = [f"L{i:02d}" for i in range(30)]
    profiles = DM.writing_profiles(ids, slip_scale=1.0, spread=1.0, seed=0)
    rude = np.array([p.rates["rude"] for p in profiles])
    assert rude.mean() == pytest.approx(DM.PAPER_SFT_RATES["rude"], rel=1e-6)  # the average writer: the paper's rate
    assert np.median(rude) < rude.mean() and rude.max() > 2.5 * rude.mean()  # most careful, a few careless
    doubled = DM.writing_profiles(ids, slip_scale=2.0, spread=1.0, seed=0)
    assert [p.rates["rude"] for p in doubled] == pytest.approx(list(2 * rude))
    assert profiles == DM.writing_profiles(ids, slip_scale=1.0, spread=1.0, seed=0)  # same seed, same writers
    with pytest.raises(ValueError, match="slip_scale must be >= 0"):
        DM.writing_profiles(ids, slip_scale=-1.0)


def test_slip_rates_count_only_answers_where_the_slip_can_show(world):
    rng = random.Random(5)
    t_open, o_open = make_task(world, rng, category="open_qa", kind="plain")
    t_sum, o_sum = make_task(world, rng, category="summarization", kind="plain")
    texts = [o_open, DM.adds_detail(world, t_sum, o_sum, rng)]
    rates = DM.slip_rates([t_open, t_sum], [check(world, t_open, texts[0]), check(world, t_sum, texts[1])], texts)
    assert rates["adds_detail"] == 1.0  # the open-domain answer does not count in the denominator
    assert rates["rude"] == 0.0


def test_slip_reading_accuracy_counts_pairs_that_differ_in_one_slip():
    clean = {s: False for s in DM.SLIPS}
    rude, short = clean | {"rude": True}, clean | {"stops_short": True}
    both = rude | {"stops_short": True}
    # prompt 1: the RM prefers the clean answer to the rude one, and ties it with the short one
    # prompt 2: the RM prefers the rude answer (wrong); the pair (rude, both) differs in stops_short only
    scores = [np.array([1.0, 0.0, 1.0]), np.array([0.0, 2.0, 1.0])]
    signs = [[clean, rude, short], [clean, rude, both]]
    got = DM.slip_reading_accuracy(scores, signs)
    assert got["rude"] == (0.5, 2)           # right on prompt 1, wrong on prompt 2
    assert got["stops_short"] == (0.75, 2)   # a tie (0.5) on prompt 1, right on prompt 2 (rude 2.0 > both 1.0)
