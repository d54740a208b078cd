"""Rejection sampling (best-of-n as SFT data): the pure selection, the scoring, and one round on a tiny GPT-2 that
SFT's own loop then fine-tunes on."""

import pytest
import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import get_profile
from rlhf_lib.data import PromptRecord, SFTRecord
from rlhf_lib.rejection_sampling import (best_index, rejection_sampling_records, reward_model_scorer, sample_n,
                                         score_samples, select_best)
from rlhf_lib.reward_model import RewardModel
from rlhf_lib.sft import encode_example, train_sft
from rlhf_lib.tokenizer import train_tokenizer

TEXTS = ["Q: Where does Mira live?\nA: Mira lives in Oakridge.", "Please be kind. Mira lives in Oakridge.",
         "Tell me about the fox. The fox eats berries."] * 40
PROMPTS = ["Q: Where does Mira live?\nA:", "Tell me about the fox.", "Please"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def cfg():
    return get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 64,
                                 "sft.batch_size": 2, "sft.epochs": 1, "sft.warmup_steps": 1})


def records(prompts=PROMPTS):
    return [PromptRecord(prompt_id=f"p{i}", user_id=f"u{i}", category="open_qa", kind="plain", prompt=p, task={})
            for i, p in enumerate(prompts)]


def count_e(prompts, completions):
    """A hand-made scorer: how many letters e a completion has (the prompt is ignored)."""
    return [float(c.count("e")) for c in completions]


# ---------------------------------------------------------------------------------------------------------------
# The selection, a pure function


def test_best_index_is_the_highest_score_first_on_ties_never_blank():
    assert best_index(["a", "b", "c"], [0.1, 2.0, -1.0]) == 1
    assert best_index(["a", "b", "c"], [3.0, 1.0, 3.0]) == 0           # a tie goes to the first
    assert best_index(["a", "  ", "c"], [0.0, 9.0, 1.0]) == 2          # blank: never a demonstration
    assert best_index(["", " \n"], [1.0, 2.0]) is None
    with pytest.raises(ValueError, match="2 completions but 3 scores"):
        best_index(["a", "b"], [1.0, 2.0, 3.0])


def test_select_best_keeps_the_scorers_best_of_n_as_sft_records():
    recs = records()
    samples = [["x", "yy", "z"], ["", ""], ["one", "two", "three", "four"]]
    scores = [[0.0, 5.0, 1.0], [1.0, 2.0], [4.0, -1.0, 4.0, 7.0]]
    out = select_best(recs, samples, scores)
    assert [r.demonstration for r in out] == ["yy", "four"]            # the second prompt had only blank samples
    assert all(isinstance(r, SFTRecord) for r in out)
    assert [(r.prompt_id, r.prompt, r.user_id) for r in out] == [(recs[i].prompt_id, recs[i].prompt,
                                                                  recs[i].user_id) for i in (0, 2)]
    demo = SFTRecord(**recs[0].to_dict(), demonstration="old answer")   # SFT records are prompts too
    assert select_best([demo], [["new answer"]], [[0.0]])[0].demonstration == "new answer"
    with pytest.raises(ValueError):
        select_best(recs, samples[:2], scores)


def test_score_samples_calls_the_scorer_once_with_aligned_prompts():
    calls = []

    def scorer(prompts, completions):
        calls.append((prompts, completions))
        return [len(p) * 10 + len(c) for p, c in zip(prompts, completions)]

    got = score_samples(scorer, ["ab", "c"], [["x", "yyy"], ["zz"]])
    assert got == [[21.0, 23.0], [12.0]] and len(calls) == 1
    assert calls[0] == (["ab", "ab", "c"], ["x", "yyy", "zz"])


# ---------------------------------------------------------------------------------------------------------------
# One round on a tiny model


def test_one_round_keeps_the_best_of_n_samples_and_sft_trains_on_them(tokenizer, cfg, tmp_path):
    policy = bm.new_model(cfg.base, tokenizer, seed=0)
    seen = []

    def scorer(prompts, completions):
        seen.append((prompts, completions))
        return count_e(prompts, completions)

    n = 4
    out = rejection_sampling_records(policy, tokenizer, records(), scorer, n=n, max_new_tokens=12, seed=0)
    prompts, completions = seen[0]
    assert len(seen) == 1 and len(out) == len(PROMPTS)
    assert len(completions) == n * len(PROMPTS) and prompts == [p for p in PROMPTS for _ in range(n)]
    for rec in out:
        i = PROMPTS.index(rec.prompt)
        candidates = [c for c in completions[i * n: (i + 1) * n] if c.strip()]
        assert rec.demonstration in candidates
        assert rec.demonstration.count("e") == max(c.count("e") for c in candidates)
    assert len(set(completions)) > len(PROMPTS)          # n different samples, not one repeated
    assert sample_n(policy, tokenizer, PROMPTS, n, 12, 1.0, seed=0) == [completions[i * n: (i + 1) * n]
                                                                        for i in range(len(PROMPTS))]
    history = train_sft(policy, tokenizer, out, out, cfg.sft, tmp_path, seed=0, progress=False)
    assert len(history["train_loss"]) > 0 and history["valid_loss"][-1] < history["valid_loss"][0]


def test_reward_model_scorer_reads_each_completion_alone(tokenizer, cfg):
    rm = RewardModel.from_lm(bm.new_model(cfg.base, tokenizer, seed=0), seed=0).eval()
    prompts, completions = ["Please", "Tell me about the fox."], [" Mira lives in Oakridge.", " The fox."]
    got = reward_model_scorer(rm, tokenizer, max_len=64, batch_size=2)(prompts, completions)
    for value, p, c in zip(got, prompts, completions):
        ids = torch.tensor([encode_example(tokenizer, p, c, 64)[0]])
        with torch.no_grad():
            assert value == pytest.approx(rm(ids, torch.ones_like(ids)).item(), abs=1e-5)
