"""Rejection-sampling fine-tuning, or expert iteration (notebook 07): best-of-n turned into training data.

Best-of-n (notebook 04's reference point) improves answers only while one pays for n samples per prompt. Fine-tuning
on the best samples moves that gain into the weights: for each prompt sample n completions from the policy, keep the
one the reward model scores highest, and train on (prompt, best) with SFT's loss and loop, as if a labeler had
written it. Repeating sample -> select -> fine-tune is expert iteration (Anthony et al., 2017); Llama 2 (Touvron et
al., 2023) used it for its first RLHF rounds, then PPO on top. Like PPO it finds what the reward model likes, gaps
included, but each round imitates best-of-n, which lies only log n - (n - 1) / n nats from the policy it samples.

The selection is a pure function (`select_best`); sampling and scoring are separate, and the scorer is any callable
on (prompts, completions), so a test can pass a hand-made rule instead of a reward model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from rlhf_lib.data import PromptRecord, SFTRecord
from rlhf_lib.reward_model import Comparison, RewardModel, encode_comparisons
from rlhf_lib.sampling import generate

Scorer = Callable[[list[str], list[str]], list[float]]
"""Scores of (prompt, completion) pairs given as two lists of equal length: the reward model, or a test's rule."""


def best_index(completions: Sequence[str], scores: Sequence[float]) -> int | None:
    """Index of the highest-scored completion that is not blank (the first one on a tie); None when all are blank,
    since a blank answer cannot be a demonstration (`SFTRecord` requires text)."""
    if len(completions) != len(scores):
        raise ValueError(f"{len(completions)} completions but {len(scores)} scores.")
    candidates = [i for i, text in enumerate(completions) if text.strip()]
    return max(candidates, key=lambda i: (scores[i], -i)) if candidates else None


def select_best(records: Sequence[PromptRecord], samples: Sequence[Sequence[str]],
                scores: Sequence[Sequence[float]]) -> list[SFTRecord]:
    """SFT records whose demonstration is each prompt's best sample (`best_index`); prompts whose samples are all
    blank are left out. `samples[i]` and `scores[i]` belong to `records[i]`."""
    if not len(records) == len(samples) == len(scores):
        raise ValueError(f"{len(records)} records, {len(samples)} sample lists, {len(scores)} score lists.")
    out = []
    for record, texts, values in zip(records, samples, scores):
        best = best_index(texts, values)
        if best is not None:
            prompt_fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(PromptRecord)}
            out.append(SFTRecord(**prompt_fields, demonstration=texts[best]))
    return out


def sample_n(policy: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], n: int,
             max_new_tokens: int, temperature: float, seed: int) -> list[list[str]]:
    """n sampled completions per prompt, as lists in the prompts' order (`sampling.generate`)."""
    texts = generate(policy, tokenizer, [p for p in prompts for _ in range(n)], max_new_tokens,
                     temperature=temperature, seed=seed)
    return [texts[i * n: (i + 1) * n] for i in range(len(prompts))]


def score_samples(scorer: Scorer, prompts: Sequence[str], samples: Sequence[Sequence[str]]) -> list[list[float]]:
    """The scorer's score of every sample, in one call, shaped like `samples`."""
    flat = scorer([p for p, texts in zip(prompts, samples) for _ in texts], [t for texts in samples for t in texts])
    out, start = [], 0
    for texts in samples:
        out.append([float(s) for s in flat[start: start + len(texts)]])
        start += len(texts)
    return out


def reward_model_scorer(reward_model: RewardModel, tokenizer: PreTrainedTokenizerBase, max_len: int,
                        batch_size: int = 32) -> Scorer:
    """The reward model as a `Scorer`: r_theta(x, y) of each prompt + completion + EOS, as it was trained to read."""
    @torch.no_grad()
    def score(prompts: list[str], completions: list[str]) -> list[float]:
        reward_model.eval()
        device = next(reward_model.parameters()).device
        out: list[float] = []
        for s in range(0, len(prompts), batch_size):
            chunk = zip(prompts[s: s + batch_size], completions[s: s + batch_size])
            comps = [Comparison(p, [y], [1]) for p, y in chunk]
            enc = {k: v.to(device) for k, v in encode_comparisons(tokenizer, comps, max_len).items()}
            out += reward_model(enc["input_ids"], enc["attention_mask"]).float().tolist()
        return out
    return score


def rejection_sampling_records(policy: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                               records: Sequence[PromptRecord], scorer: Scorer, n: int, max_new_tokens: int,
                               temperature: float = 1.0, seed: int = 0) -> list[SFTRecord]:
    """One round's training data: sample n completions per prompt, keep the scorer's best of each. Fine-tune on them
    with `sft.train_sft`, then call again with the fine-tuned policy for the next round of expert iteration."""
    prompts = [r.prompt for r in records]
    samples = sample_n(policy, tokenizer, prompts, n, max_new_tokens, temperature, seed)
    return select_best(records, samples, score_samples(scorer, prompts, samples))
