"""Notebook 07's step (`rlhf_lib.alternatives`): Gao's frontier fits recover known coefficients, round two ranks the
PPO policy's samples and its reward model trains on both rounds, rejection sampling keeps the reward model's best of
n through the step, DPO's curve is measured over training, and the metrics carry every method's keys."""

import json
import math
import random

import numpy as np
import pytest

from rlhf_lib import alternatives as alt
from rlhf_lib import base_model as bm
from rlhf_lib import reward_model as rmod
from rlhf_lib import sampling
from rlhf_lib.config import DPOConfig, get_profile
from rlhf_lib.data import PromptRecord
from rlhf_lib.dpo import PreferencePair, train_dpo
from rlhf_lib.labelers import make_pool
from rlhf_lib.ppo_trainer import PPOSetup
from rlhf_lib.reward_model import Comparison, RewardModel
from rlhf_lib.rejection_sampling import reward_model_scorer
from rlhf_lib.tasks import make_task
from rlhf_lib.tokenizer import train_tokenizer

TINY = {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 64}


@pytest.fixture(scope="module")
def records(world):
    rng = random.Random(0)
    out = []
    for i in range(6):
        task, _ = make_task(world, rng, category="open_qa")
        out.append(PromptRecord(prompt_id=f"p{i}", user_id=f"u{i}", category="open_qa", kind=task.kind,
                                prompt=task.prompt, task=task.to_dict()))
    return out


@pytest.fixture(scope="module")
def tokenizer(records):
    return train_tokenizer([r.prompt for r in records] * 30 + ["The fox eats berries. Mira lives in Oakridge."] * 30,
                           vocab_size=300)


@pytest.fixture(scope="module")
def cfg():
    return get_profile("smoke", TINY)


def tiny_setup(cfg, tokenizer, world, records) -> PPOSetup:
    ref = bm.new_model(cfg.base, tokenizer, seed=0).requires_grad_(False)
    rm = RewardModel.from_lm(bm.new_model(cfg.base, tokenizer, seed=1), seed=0).requires_grad_(False)
    return PPOSetup(ref=ref, reward_model=rm, tokenizer=tokenizer, world=world, prompts=records, eval_records=records)


# ---------------------------------------------------------------------------------------------------------------
# Gao et al.'s forms


@pytest.mark.parametrize("form", ["best_of_n", "rl"])
def test_frontier_fits_recover_known_coefficients(form):
    alpha, beta, gold_0 = 1.3, 0.4, 6.0
    kl = np.array([math.log(n) - (n - 1) / n for n in (1, 2, 4, 8, 16, 32, 64)]) if form == "best_of_n" \
        else np.array([0.0, 0.3, 1.0, 2.5, 4.0, 7.0, 12.0])
    fit_exact = alt.fit_frontier(kl.tolist(), alt.frontier_curve({"alpha": alpha, "beta": beta, "gold_0": gold_0},
                                                                  form, kl).tolist(), gold_0, form)
    d = np.sqrt(kl)
    by_hand = gold_0 + d * (alpha - beta * (d if form == "best_of_n" else np.log(np.where(d > 0, d, 1.0))))
    fit = alt.fit_frontier(kl.tolist(), by_hand.tolist(), gold_0, form)  # the forms written out again
    for f in (fit_exact, fit):
        assert f["alpha"] == pytest.approx(alpha, abs=1e-9) and f["beta"] == pytest.approx(beta, abs=1e-9)
    peak = (alpha / (2 * beta)) ** 2 if form == "best_of_n" else math.exp(2 * (alpha / beta - 1))
    assert fit["peak_kl"] == pytest.approx(peak, rel=1e-9) and fit["n_points"] == len(kl)
    noisy = by_hand + np.random.default_rng(0).normal(0, 0.01, len(kl))
    rough = alt.fit_frontier(kl.tolist(), noisy.tolist(), gold_0, form)
    assert rough["alpha"] == pytest.approx(alpha, abs=0.1) and rough["beta"] == pytest.approx(beta, abs=0.1)


def test_a_frontier_that_only_rises_has_no_peak_and_an_unknown_form_is_an_error():
    kl = [0.0, 1.0, 4.0]
    assert alt.fit_frontier(kl, [5.0, 6.0, 7.0], 5.0, "best_of_n")["peak_kl"] is None  # gold = 5 + d: beta = 0
    with pytest.raises(ValueError, match="Unknown form"):
        alt.fit_frontier(kl, [5.0, 6.0, 7.0], 5.0, "linear")


def test_gold_at_kl_interpolates_and_best_at_kl_names_the_highest_curve_that_reaches_it():
    points = {"a": [{"kl": 0.0, "gold": 5.0}, {"kl": 2.0, "gold": 7.0}],
              "b": [{"kl": 3.0, "gold": 4.0}, {"kl": 0.0, "gold": 5.0}, {"kl": 6.0, "gold": 8.0}]}
    assert alt.gold_at_kl(points["a"], 1.0) == pytest.approx(6.0)
    assert alt.gold_at_kl(points["b"], 1.5) == pytest.approx(4.5)  # sorted by KL first
    assert alt.gold_at_kl(points["a"], 5.0) is None
    at = alt.best_at_kl(points, (1.0, 5.0, 10.0))
    assert at["1"]["best"] == "a" and at["5"]["best"] == "b" and at["5"]["gold"]["a"] is None
    assert at["10"] == {"best": None, "gold": {"a": None, "b": None}}


def test_round2_effect_reads_each_curves_peak():
    points = {"ppo": [{"kl": 0.0, "gold": 5.0}, {"kl": 1.0, "gold": 6.0}, {"kl": 2.0, "gold": 5.5}],
              "ppo_round2": [{"kl": 0.0, "gold": 5.0}, {"kl": 1.0, "gold": 6.0}, {"kl": 3.0, "gold": 6.5}]}
    fits = {"ppo": {"peak_kl": 1.2}, "ppo_round2": {"peak_kl": None}}
    effect = alt.round2_effect(points, fits)
    assert effect["round1"] == {"peak_gold": 6.0, "peak_kl": 1.0, "at_end": False, "final_gold": 5.5,
                                "final_kl": 2.0, "fit_peak_kl": 1.2}
    assert effect["round2"]["at_end"] and effect["lifts_peak_gold"] and effect["peak_at_larger_kl"]


# ---------------------------------------------------------------------------------------------------------------
# Round two


def test_round2_comparisons_come_from_the_ppo_policy(cfg, tokenizer, world, records, tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    s = tiny_setup(cfg, tokenizer, world, records)
    ppo = bm.new_model(cfg.base, tokenizer, seed=2)
    names = {id(s.ref): "SFT", id(ppo): "PPO"}
    calls = []

    def fake_generate(model, tokenizer, prompts, max_new_tokens, temperature=1.0, seed=0, **kwargs):
        calls.append((names.get(id(model), "other"), len(prompts)))
        return [f"{names.get(id(model), 'other')} answer {seed} {i}" for i in range(len(prompts))]

    monkeypatch.setattr(sampling, "generate", fake_generate)
    data = alt.round2_comparisons(cfg, s, make_pool(seed=0), ppo, records)
    assert {who for who, _ in calls} == {"PPO"}
    assert [j.prompt_id for j in data.judgements] == [r.prompt_id for r in records]
    for j, owners in zip(data.judgements, data.owners):
        assert cfg.labelers.k_min <= len(j.completions) <= cfg.labelers.k_max
        assert all(c.startswith("PPO answer") for c in j.completions) and owners == ["ppo"] * len(j.completions)
        assert j.labeler_id in {lab.labeler_id for lab in make_pool(seed=0) if lab.group == "train"}
    assert sum(n for _, n in calls) == sum(len(j.completions) for j in data.judgements)
    comps = data.comparisons
    assert [c.prompt for c in comps] == [r.prompt for r in records]
    saved = [json.loads(line) for line in (tmp_path / "smoke" / "alternatives" / "samples_round2.jsonl").open()]
    assert [row["owners"] for row in saved] == data.owners
    assert len((tmp_path / "smoke" / "alternatives" / "labels_round2.jsonl").read_text().splitlines()) == len(records)


def test_round2_reward_model_trains_on_both_rounds(cfg, tokenizer, monkeypatch):
    seen = []
    real_loss = rmod.rm_loss

    def counting_loss(scores, ranks):
        seen.append(len(ranks))  # comparisons (ranked prompts) in this training step
        return real_loss(scores, ranks)

    monkeypatch.setattr(rmod, "rm_loss", counting_loss)
    old = [Comparison(f"old prompt {i}", [" The fox eats berries.", " No."], [1, 2]) for i in range(6)]
    new = [Comparison(f"new prompt {i}", [" Mira lives in Oakridge.", " Yes.", " Oak."], [2, 1, 3]) for i in range(4)]
    valid = {"valid_train": old[:2], "valid_heldout": new[:2]}
    rm_cfg = get_profile("smoke", {**TINY, "rm.batch_size": 3, "rm.epochs": 1, "rm.max_len": 64})
    rm, history = alt.train_rm_round2(rm_cfg, bm.new_model(rm_cfg.base, tokenizer, seed=0), tokenizer, old, new, valid,
                                      progress=False)
    assert sum(seen) == len(old) + len(new) and len(seen) == math.ceil(10 / 3)
    assert history["n_comparisons"] == {"round1": 6, "round2": 4}
    assert isinstance(rm, RewardModel) and len(history["valid_train_acc"]) >= 1


# ---------------------------------------------------------------------------------------------------------------
# Rejection sampling


def count_e(prompts, completions):
    """A hand-made scorer: how many letters e a completion has."""
    return [float(c.count("e")) for c in completions]


@pytest.mark.parametrize("use_reward_model", [False, True])
def test_rejection_sampling_keeps_the_best_of_n_through_the_step(cfg, tokenizer, world, records, use_reward_model,
                                                                 monkeypatch):
    """With a hand-made scorer, and with the default one (the setup's reward model, watched through a spy): every
    kept demonstration is its prompt's best of n, for PPO's first `alternatives.rs_prompts` prompts."""
    c = get_profile("smoke", {**TINY, "alternatives.rs_prompts": 4, "ppo.best_of_n": 5, "ppo.max_new_tokens": 10})
    s = tiny_setup(c, tokenizer, world, records)
    rule = reward_model_scorer(s.reward_model, tokenizer, 64) if use_reward_model else count_e
    seen = []

    def spy(prompts, completions):
        seen.append((prompts, completions))
        return rule(prompts, completions)

    def watched_reward_model(reward_model, *args, **kwargs):
        assert reward_model is s.reward_model
        real = reward_model_scorer(reward_model, *args, **kwargs)
        return lambda prompts, completions: (seen.append((prompts, completions)), real(prompts, completions))[1]

    monkeypatch.setattr(alt, "reward_model_scorer", watched_reward_model)
    out = alt.rejection_sampling_data(c, s, None if use_reward_model else spy)
    n, chosen = c.ppo.best_of_n, s.prompts[: c.alternatives.rs_prompts]
    assert len(seen) == 1
    prompts, completions = seen[0]
    assert prompts == [r.prompt for r in chosen for _ in range(n)]  # PPO's prompts, n samples each
    scores = rule(prompts, completions)
    by_id = {r.prompt_id: r for r in out}
    for i, rec in enumerate(chosen):
        kept = [(v, t) for v, t in zip(scores[i * n: (i + 1) * n], completions[i * n: (i + 1) * n]) if t.strip()]
        if not kept:
            assert rec.prompt_id not in by_id
            continue
        assert by_id[rec.prompt_id].demonstration == max(kept, key=lambda vt: vt[0])[1]
        assert by_id[rec.prompt_id].prompt == rec.prompt
    assert len(out) >= 1 and len(set(completions)) > len(chosen)


# ---------------------------------------------------------------------------------------------------------------
# DPO's curve


def test_dpo_is_measured_before_training_and_evenly_over_it(tokenizer, cfg):
    policy = bm.new_model(cfg.base, tokenizer, seed=0)
    pairs = [PreferencePair("Where does Mira live?", " Mira lives in Oakridge.", " No.")] * 10
    steps = []

    def evaluate(model, step):
        steps.append(step)
        return {"kl": float(step), "rm": 0.0, "gold": 1.0}

    history = train_dpo(policy, None, tokenizer, pairs, DPOConfig(batch_size=2, max_len=64, warmup_steps=1), seed=0,
                        progress=False, evaluate=evaluate, n_evals=2)
    assert steps == [0, 3, 5] and [e["step"] for e in history["eval"]] == [0, 3, 5]
    assert policy.training  # back in training mode after each measurement
    assert train_dpo(policy, None, tokenizer, pairs[:2], DPOConfig(batch_size=2, max_len=64), seed=0,
                     progress=False)["eval"] == []


# ---------------------------------------------------------------------------------------------------------------
# The metrics


def fake_judged(name: str, win: float) -> dict:
    return {"winrate_vs_sft": win, "winrate_vs_sft_ci": [win - 0.1, win + 0.1], "likert": 4.0,
            "likert_ci": [3.8, 4.2], "gold": 6.0, "gold_ci": 0.2, "kl": 1.0, "kl_ci": 0.1, "rm": 0.3, "rm_ci": 0.1}


def test_metrics_have_every_methods_keys_and_round_twos_paired_difference():
    points = {"ppo": [{"kl": 0.0, "rm": 0.0, "gold": 6.0, "step": 0}, {"kl": 1.0, "rm": 0.5, "gold": 6.4, "step": 2},
                      {"kl": 2.0, "rm": 0.8, "gold": 6.2, "step": 4}],
              "ppo_small_beta": [{"kl": 0.0, "rm": 0.0, "gold": 6.0, "step": 0},
                                 {"kl": 5.0, "rm": 1.5, "gold": 5.5, "step": 4}],
              "best_of_n": [{"kl": math.log(n) - (n - 1) / n, "rm": 0.1 * n, "gold": 6.0 + 0.05 * n - 0.004 * n * n,
                             "n": n} for n in (1, 2, 4, 8)],
              "dpo": [{"kl": 0.0, "rm": 0.0, "gold": 6.0, "step": 0}, {"kl": 0.5, "rm": 0.1, "gold": 6.1, "step": 9}],
              "rejection_sampling": [{"kl": 0.0, "rm": 0.0, "gold": 6.0, "step": 0},
                                     {"kl": 0.8, "rm": 0.2, "gold": 6.3, "step": 1}],
              "ppo_round2": [{"kl": 0.0, "rm": 0.0, "gold": 6.0, "step": 0},
                             {"kl": 1.5, "rm": 0.6, "gold": 6.6, "step": 4}]}
    fits = alt.frontier_fits(points)
    measured = {"ppo": {"gold": [6.0, 5.0, 7.0]}, "ppo_round2": {"gold": [6.5, 5.5, 7.5]}}
    metrics = alt.alternatives_metrics({m: fake_judged(m, 0.5) for m in alt.METHODS}, measured, points, fits,
                                       alt.best_at_kl(points, (1.0, 2.0, 5.0)), alt.round2_effect(points, fits),
                                       {"seconds": 1.0})
    for method in ("dpo", "best_of_n", "rejection_sampling", "ppo", "ppo_round2"):
        assert {"gold", "gold_ci", "kl", "winrate_vs_sft", "winrate_vs_sft_ci"} <= set(metrics[method]), method
    for method in ("best_of_n", "ppo"):
        assert {"alpha", "beta", "gold_0", "peak_kl"} <= set(metrics["frontier_fit"][method])
    assert metrics["round2"]["gold_minus_round1"] == pytest.approx(0.5)
    assert metrics["round2"]["gold_minus_round1_ci"] == pytest.approx(0.0) and metrics["round2"]["lifts_gold"]
    assert metrics["best_at_kl"]["5"]["best"] == "ppo_small_beta"
    text = alt.findings_text(metrics)
    assert "KL 1 nats" in text and "ppo round2" in text and "Round two** lifts" in text
