"""Simulated labelers: a pool of people whose preferences we know, judging completions as the paper's did (notebook 01).

The paper hired about 40 contractors, screened them, and kept a separate group of *held-out* labelers who wrote no
training data, to test whether the models generalise to people they were not trained on (Sections 3.4, 4.1). Each
labeler here scores a completion from the checker's axes (`rlhf_lib.checks`) with personal weights, a personal quirk
(some like longer answers, some like courteous ones), and noise; ranks K completions (ties allowed); gives each a 1-7
Likert score and the paper's metadata flags.

The *gold utility* is the pool's mean weights with no quirk and no noise. It exists for analysis only (how good is a
policy really?) and never enters training: the reward model learns from the noisy rankings of training labelers.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from rlhf_lib.checks import Checks
from rlhf_lib.labels import FLAGS, Judgement
from rlhf_lib.tasks import COURTESY

AXES = ("attempts", "follows_constraints", "truthful", "appropriate", "correct")
"""Features a labeler weighs, each in [0, 1], higher is better (from `Checks`)."""
MEAN_WEIGHTS = {"attempts": 2.0, "follows_constraints": 1.0, "truthful": 1.5, "appropriate": 1.5, "correct": 1.5}
"""The pool's average priorities: helpfulness first in training, as the paper's instructions asked (Section 3.4),
with truthfulness and harmlessness close behind."""
PAPER_AGREEMENT = {"train": (0.726, 0.015), "heldout": (0.773, 0.013)}
"""Inter-annotator agreement, mean and standard error (Section 3.4 / 5.1)."""


def features(checks: Checks, completion: str) -> np.ndarray:
    """The axes as numbers, then two quirk features: log length and courtesy. Shape (len(AXES) + 2,)."""
    follows = 1.0 if checks.follows_constraints is None else checks.follows_constraints
    correct = 0.5 if checks.correct is None else checks.correct  # no right answer: neither good nor bad
    length = math.log1p(checks.n_words) / math.log(60)
    courteous = float(any(c in completion.lower() for c in COURTESY))
    return np.array([float(checks.attempts), follows, float(not checks.hallucinates), float(checks.appropriate),
                     correct, length, courteous])


@dataclass
class Labeler:
    labeler_id: str
    group: str
    """"train" (writes training labels) or "heldout" (evaluation only)."""
    weights: np.ndarray
    """Personal weight per feature: AXES, then length and courtesy quirks."""
    noise: float
    """Standard deviation of the per-judgement noise on utilities (Gumbel-like taste of the day)."""
    tie_margin: float = 0.05
    """Completions whose noisy utilities differ by less than this are ranked as ties."""

    def utility(self, feats: np.ndarray) -> np.ndarray:
        """Noise-free utility of each completion: feats (K, F) -> (K,)."""
        return feats @ self.weights


def gold_weights() -> np.ndarray:
    """The pool's mean priorities, no quirks."""
    return np.array([MEAN_WEIGHTS[a] for a in AXES] + [0.0, 0.0])


def gold_utility(checks: Checks, completion: str) -> float:
    """How good a completion really is (for analysis only; never a training signal)."""
    return float(features(checks, completion) @ gold_weights())


def make_pool(n_labelers: int = 40, n_heldout: int = 10, seed: int = 0, noise_train: float = 1.0,
              noise_heldout: float = 1.0, weight_spread: float = 0.35, quirk_spread: float = 0.6) -> list[Labeler]:
    """A pool of labelers: personal weights are the mean weights times log-normal factors; quirks are centred."""
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(n_labelers):
        group = "heldout" if i >= n_labelers - n_heldout else "train"
        base = gold_weights()[: len(AXES)] * np.exp(rng.normal(0.0, weight_spread, len(AXES)))
        quirks = rng.normal(0.0, quirk_spread, 2)
        pool.append(Labeler(f"L{i:02d}", group, np.concatenate([base, quirks]),
                            noise_heldout if group == "heldout" else noise_train))
    return pool


def rank_from_utilities(u: np.ndarray, tie_margin: float) -> list[int]:
    """Dense ranks, 1 = best; neighbours closer than `tie_margin` share a rank."""
    order = np.argsort(-u, kind="stable")
    ranks = [0] * len(u)
    rank, prev = 0, None
    for idx in order:
        if prev is None or prev - u[idx] >= tie_margin:
            rank += 1
        ranks[idx] = rank
        prev = u[idx]
    return ranks


def likert_from_utility(u: float) -> int:
    """1-7: the gold-utility scale (about -1.5 .. 7.5) mapped linearly, then clipped."""
    return int(min(7, max(1, round(1 + 6 * (u + 0.5) / 8.0))))


def judge(labeler: Labeler, prompt_id: str, completions: list[str], checks: list[Checks],
          rng: np.random.Generator, flag_error: float = 0.05) -> Judgement:
    """One labeler ranks K completions, scores each 1-7 and sets the metadata flags (each mis-set with prob. flag_error)."""
    feats = np.stack([features(c, t) for c, t in zip(checks, completions)])
    # a person shown the same text twice judges it the same: identical completions share their noise (and so tie)
    first = {text: i for i, text in reversed(list(enumerate(c.strip() for c in completions)))}
    noise = rng.normal(0.0, labeler.noise, len(completions))
    noisy = labeler.utility(feats) + noise[[first[c.strip()] for c in completions]]
    flags = []
    for c in checks:
        truth = {"fails_instruction": not c.attempts, "inappropriate_for_customer_assistant": not c.appropriate,
                 "hallucination": c.hallucinates}
        flags.append({f: bool(truth.get(f, False)) ^ bool(rng.random() < flag_error) if f in truth else False
                      for f in FLAGS})
    return Judgement(prompt_id=prompt_id, labeler_id=labeler.labeler_id, completions=list(completions),
                     ranks=rank_from_utilities(noisy, labeler.tie_margin),
                     likert=[likert_from_utility(u) for u in noisy], flags=flags, timestamp=time.time())


# ---------------------------------------------------------------------------------------------------------------
# Agreement: how often two labelers order a pair of completions the same way (ties on either side do not count)


def pair_agreement(ranks_a: list[int], ranks_b: list[int]) -> tuple[int, int]:
    """(agreeing pairs, comparable pairs) between two rankings of the same completions."""
    agree = total = 0
    for i, j in combinations(range(len(ranks_a)), 2):
        da, db = ranks_a[i] - ranks_a[j], ranks_b[i] - ranks_b[j]
        if da and db:
            total += 1
            agree += (da > 0) == (db > 0)
    return agree, total


def agreement_matrix(pool: list[Labeler], items: list[tuple[list[str], list[Checks]]], seed: int = 0) -> np.ndarray:
    """Every labeler ranks every item; entry (a, b) is the fraction of comparable pairs on which a and b agree."""
    rng = np.random.default_rng(seed)
    ranks = [[judge(lab, "", comps, chk, rng, flag_error=0.0).ranks for comps, chk in items] for lab in pool]
    n = len(pool)
    mat = np.eye(n)
    for a, b in combinations(range(n), 2):
        agree = total = 0
        for ra, rb in zip(ranks[a], ranks[b]):
            g, t = pair_agreement(ra, rb)
            agree, total = agree + g, total + t
        mat[a, b] = mat[b, a] = agree / total if total else float("nan")
    return mat


def group_agreement(pool: list[Labeler], mat: np.ndarray, group: str) -> tuple[float, float]:
    """Mean agreement among pairs of labelers within `group`, and its standard error over labelers."""
    idx = [i for i, lab in enumerate(pool) if lab.group == group]
    per_labeler = [np.mean([mat[i, j] for j in idx if j != i]) for i in idx]
    return float(np.mean(per_labeler)), float(np.std(per_labeler) / math.sqrt(len(per_labeler)))


def noise_free_accuracy(utilities: list[np.ndarray], rankings: list[list[int]]) -> float:
    """How often a noise-free scorer orders the compared pairs (different ranks) like the labelers did; pairs it
    scores equal count half (a coin flip). With the right utilities this is the best any reward model can do."""
    right = total = 0.0
    for u, ranks in zip(utilities, rankings):
        for i, j in combinations(range(len(ranks)), 2):
            if ranks[i] == ranks[j]:
                continue
            total += 1
            better, worse = (i, j) if ranks[i] < ranks[j] else (j, i)
            right += 1.0 if u[better] > u[worse] + 1e-9 else 0.5 if abs(u[better] - u[worse]) <= 1e-9 else 0.0
    return right / total if total else float("nan")


def accuracy_ceilings(pool: list[Labeler], feats: list[np.ndarray], judgements: list[Judgement]
                      ) -> dict[str, float]:
    """Upper bounds for reward-model accuracy on these rankings (analysis only: this reads the labelers' weights).

    `gold`: the gold utility; `mean_labeler`: the mean weights (quirks included) of the judges' group, the best a
    model of "the" labeler can do; `own_labeler`: each judgement's own labeler without noise, the noise floor."""
    by_id = {lab.labeler_id: lab for lab in pool}
    groups = {by_id[j.labeler_id].group for j in judgements}
    mean_w = np.mean([lab.weights for lab in pool if lab.group in groups], axis=0)
    ranks = [j.ranks for j in judgements]
    return {"gold": noise_free_accuracy([f @ gold_weights() for f in feats], ranks),
            "mean_labeler": noise_free_accuracy([f @ mean_w for f in feats], ranks),
            "own_labeler": noise_free_accuracy([f @ by_id[j.labeler_id].weights for f, j in zip(feats, judgements)],
                                               ranks)}


def pair_differences(feats: list[np.ndarray], rankings: list[list[int]]) -> np.ndarray:
    """f(better) - f(worse) for every compared pair (different ranks): shape (pairs, features)."""
    rows = [f[i] - f[j] if r[i] < r[j] else f[j] - f[i]
            for f, r in zip(feats, rankings) for i, j in combinations(range(len(r)), 2) if r[i] != r[j]]
    return np.array(rows).reshape(-1, feats[0].shape[1] if feats else 0)


def axes_model_accuracy(train_feats: list[np.ndarray], train_rankings: list[list[int]],
                        valid_feats: list[np.ndarray], valid_rankings: list[list[int]], l2: float = 1e-3,
                        steps: int = 500) -> tuple[float, np.ndarray]:
    """A reward model that reads the checker's axes perfectly and learns only their weights from the *training*
    rankings (a Bradley-Terry model, i.e. logistic regression on feature differences, fitted by Newton's method).

    Returns its accuracy on the validation rankings and the learned weights. Between this and the reward model lies
    what the RM fails to read from the text; between this and the noise-free ceilings, what the rankings cannot
    teach. Analysis only: it reads the checker, which no training signal does.
    """
    x = pair_differences(train_feats, train_rankings)
    w = np.zeros(x.shape[1])
    for _ in range(steps):  # minimise mean -log sigmoid(x @ w) + l2/2 |w|^2
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = -x.T @ (1.0 - p) / len(x) + l2 * w
        hess = (x * (p * (1.0 - p))[:, None]).T @ x / len(x) + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    scores = [f @ w for f in valid_feats]
    return noise_free_accuracy(scores, valid_rankings), w


def reading_accuracy(scores: list[np.ndarray], feats: list[np.ndarray]) -> dict[str, tuple[float, int]]:
    """How often `scores` order two completions of one prompt as the gold utility does, by what tells them apart:
    {axis: (accuracy, pairs)} for pairs that differ in that one axis only, and "several axes". Pairs the gold
    utility ties are left out; equal scores count half. Which axes can a reward model read from the text?"""
    gold = gold_weights()
    counts: dict[str, list[float]] = {}
    for s, f in zip(scores, feats):
        u = f @ gold
        for i, j in combinations(range(len(u)), 2):
            if abs(u[i] - u[j]) <= 1e-9:
                continue
            differ = [a for k, a in enumerate(AXES) if abs(f[i, k] - f[j, k]) > 1e-9]
            kind = differ[0] if len(differ) == 1 else "several axes"
            better, worse = (i, j) if u[i] > u[j] else (j, i)
            right = 1.0 if s[better] > s[worse] else 0.5 if s[better] == s[worse] else 0.0
            counts.setdefault(kind, []).append(right)
    return {kind: (float(np.mean(v)), len(v)) for kind, v in counts.items()}


def calibrate_noise(pool: list[Labeler], items: list[tuple[list[str], list[Checks]]], group: str, target: float,
                    seed: int = 0, lo: float = 0.0, hi: float = 8.0, iters: int = 14) -> float:
    """Bisect the group's noise level so that its mean pairwise agreement on `items` is `target`.

    The paper reports how often its labelers agreed (72.6% training, 77.3% held-out); we set our labelers' noise so
    that they agree as often, on the candidate sets given. Returns the noise, and sets it on the group's labelers.
    """
    members = [lab for lab in pool if lab.group == group]
    for _ in range(iters):
        mid = (lo + hi) / 2
        for lab in members:
            lab.noise = mid
        got, _ = group_agreement(members, agreement_matrix(members, items, seed), group)
        lo, hi = (mid, hi) if got > target else (lo, mid)
    for lab in members:
        lab.noise = (lo + hi) / 2
    return (lo + hi) / 2


def pick(pool: list[Labeler], group: str, rng: random.Random) -> Labeler:
    """A random labeler of the group (most comparisons in the paper were labelled by one labeler)."""
    return rng.choice([lab for lab in pool if lab.group == group])
