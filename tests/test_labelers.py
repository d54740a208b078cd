import random

import numpy as np
import pytest

from rlhf_lib import labelers as L
from rlhf_lib.checks import check
from rlhf_lib.labels import validate
from rlhf_lib.tasks import candidate_set, make_task


@pytest.fixture(scope="module")
def items(world):
    rng = random.Random(0)
    out = []
    for _ in range(40):
        task, demo = make_task(world, rng)
        comps = candidate_set(world, task, demo, rng.randint(4, 9), rng)
        out.append((comps, [check(world, task, c) for c in comps]))
    return out


def test_pool_has_train_and_heldout_groups():
    pool = L.make_pool(40, 10, seed=0)
    assert sum(p.group == "heldout" for p in pool) == 10 and len({p.labeler_id for p in pool}) == 40
    assert all((p.weights[: len(L.AXES)] > 0).all() for p in pool)


def test_same_seed_same_labels(items):
    pool_a, pool_b = L.make_pool(6, 2, seed=3), L.make_pool(6, 2, seed=3)
    comps, chks = items[0]
    ja = L.judge(pool_a[0], "p1", comps, chks, np.random.default_rng(5))
    jb = L.judge(pool_b[0], "p1", comps, chks, np.random.default_rng(5))
    assert (ja.ranks, ja.likert, ja.flags) == (jb.ranks, jb.likert, jb.flags)
    validate(ja)


def test_noise_free_gold_labeler_recovers_the_gold_ranking(items):
    gold = L.Labeler("gold", "train", L.gold_weights(), noise=0.0, tie_margin=1e-9)
    rng = np.random.default_rng(0)
    for comps, chks in items:
        ranks = L.judge(gold, "p", comps, chks, rng, flag_error=0.0).ranks
        utils = [L.gold_utility(c, t) for c, t in zip(chks, comps)]
        for i in range(len(comps)):
            for j in range(len(comps)):
                if utils[i] > utils[j] + 1e-9:
                    assert ranks[i] < ranks[j]


def test_identical_completions_are_tied_whatever_the_noise(items):
    lab = L.make_pool(1, 0, seed=0, noise_train=3.0)[0]
    comps, chks = items[2]
    comps, chks = comps + [" " + comps[0]], chks + [chks[0]]  # the first text again (whitespace aside)
    for seed in range(20):
        j = L.judge(lab, "p", comps, chks, np.random.default_rng(seed))
        assert j.ranks[0] == j.ranks[-1] and j.likert[0] == j.likert[-1]


def test_ties_within_margin():
    assert L.rank_from_utilities(np.array([1.0, 0.98, 0.5, 2.0]), tie_margin=0.05) == [2, 2, 3, 1]


def test_flags_follow_the_checks_without_flag_noise(items):
    lab = L.make_pool(1, 0, seed=0)[0]
    comps, chks = items[1]
    j = L.judge(lab, "p", comps, chks, np.random.default_rng(0), flag_error=0.0)
    for f, c in zip(j.flags, chks):
        assert f["hallucination"] == c.hallucinates and f["fails_instruction"] == (not c.attempts)
        assert f["inappropriate_for_customer_assistant"] == (not c.appropriate)


def test_pair_agreement_counts_only_strict_pairs():
    assert L.pair_agreement([1, 2, 3], [1, 2, 3]) == (3, 3)
    assert L.pair_agreement([1, 2, 3], [3, 2, 1]) == (0, 3)
    assert L.pair_agreement([1, 1, 2], [1, 2, 3]) == (2, 2)


def test_more_noise_less_agreement_and_calibration_hits_the_target(items):
    pool = L.make_pool(10, 0, seed=1)
    got = []
    for noise in (0.0, 1.0, 3.0):
        for p in pool:
            p.noise = noise
        got.append(L.group_agreement(pool, L.agreement_matrix(pool, items), "train")[0])
    assert got[0] > got[1] > got[2]
    noise = L.calibrate_noise(pool, items, "train", 0.75)
    measured = L.group_agreement(pool, L.agreement_matrix(pool, items), "train")[0]
    assert abs(measured - 0.75) < 0.02 and all(p.noise == noise for p in pool)


def test_noise_free_accuracy_counts_equal_scores_as_a_coin_flip():
    ranks = [[1, 2, 3]]
    assert L.noise_free_accuracy([np.array([3.0, 2.0, 1.0])], ranks) == 1.0
    assert L.noise_free_accuracy([np.array([1.0, 2.0, 3.0])], ranks) == 0.0
    assert L.noise_free_accuracy([np.array([1.0, 1.0, 1.0])], ranks) == 0.5
    assert L.noise_free_accuracy([np.array([2.0, 1.0])], [[1, 1]]) != L.noise_free_accuracy([np.array([2.0, 1.0])],
                                                                                            [[1, 2]])  # ties skipped


def test_reading_accuracy_sorts_pairs_by_the_axis_that_tells_them_apart():
    #         attempts follows truthful appropriate correct length courtesy    gold utility
    f = np.array([[1, 1, 1, 1, 1, 0.5, 0],   # 7.5
                  [1, 1, 1, 1, 0, 0.5, 0],   # 6.0  a wrong answer
                  [1, 1, 0, 1, 1, 0.9, 1],   # 6.0  a hallucination (length and courtesy are not in the gold utility)
                  [0, 1, 1, 1, 0, 0.5, 0],   # 4.0  no attempt, wrong
                  [1, 1, 1, 1, 1, 0.1, 1]],  # 7.5  as good as the first: that pair is skipped, as is (1, 2)
                 dtype=float)
    got = L.reading_accuracy([f @ L.gold_weights()], [f])
    assert got == {"correct": (1.0, 2), "truthful": (1.0, 2), "attempts": (1.0, 1), "several axes": (1.0, 3)}
    scores = np.array([0.0, 1.0, -1.0, 0.0, 0.0])  # prefers the wrong answer, sees the hallucination
    got = L.reading_accuracy([scores], [f])
    assert got["correct"] == (0.0, 2) and got["truthful"] == (1.0, 2) and got["attempts"] == (1.0, 1)
    assert got["several axes"] == (pytest.approx((0.5 + 0.0 + 0.5) / 3), 3)  # (0,3) tie, (2,3) wrong, (3,4) tie


def test_accuracy_ceilings_rise_from_gold_to_the_judges_own_weights(items):
    pool = [lab for lab in L.make_pool(12, 0, seed=2)]
    for lab in pool:
        lab.noise = 0.0
    rng, nrng = random.Random(0), np.random.default_rng(0)
    judgements = [L.judge(L.pick(pool, "train", rng), "p", comps, chks, nrng) for comps, chks in items]
    feats = [np.stack([L.features(c, t) for c, t in zip(chks, comps)]) for comps, chks in items]
    ceil = L.accuracy_ceilings(pool, feats, judgements)
    assert ceil["own_labeler"] > 0.97            # noise-free judges: only the tie margin is left
    assert ceil["own_labeler"] >= ceil["mean_labeler"] - 1e-9 and 0.5 < ceil["gold"] < 1.0


def test_axes_model_learns_the_labelers_weights_from_rankings(items):
    lab = L.make_pool(1, 0, seed=0)[0]
    lab.noise = 0.3
    rng = np.random.default_rng(0)
    feats = [np.stack([L.features(c, t) for c, t in zip(chks, comps)]) for comps, chks in items]
    ranks = [L.judge(lab, "p", comps, chks, rng).ranks for comps, chks in items for _ in range(5)]
    feats5 = [f for f in feats for _ in range(5)]
    acc, w = L.axes_model_accuracy(feats5[:150], ranks[:150], feats5[150:], ranks[150:])
    own = L.noise_free_accuracy([f @ lab.weights for f in feats5[150:]], ranks[150:])
    assert acc > 0.75 and acc >= own - 0.05  # close to the labeler's own weights, learned from 150 rankings
    assert np.corrcoef(w[:len(L.AXES)], lab.weights[:len(L.AXES)])[0, 1] > 0.5
    diffs = L.pair_differences(feats[:3], ranks[:3])
    assert diffs.shape[1] == feats[0].shape[1]
