"""Measuring a policy against the reward model and the truth (notebooks 04 to 06).

For a set of prompts: sample, then read three numbers per sample: the RM score (what PPO optimises), the gold
utility (what the labelers would really prefer; analysis only) and the KL to the SFT model on that sample,
log pi(y|x) - log pi_SFT(y|x), whose mean over samples estimates KL(pi || pi_SFT). Over-optimisation is the RM score
rising while the gold utility stalls or falls as the KL grows. Best-of-n sampling from SFT is the classic reference
on the same axes: its KL is known exactly, log n - (n - 1) / n.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from rlhf_lib.data import PromptRecord
from rlhf_lib.evaluation import mean_ci, score_samples
from rlhf_lib.reward_model import RewardModel
from rlhf_lib.rollout import response_logprobs, sample_rollout, score_rollout


@torch.no_grad()
def sample_and_measure(policy: torch.nn.Module, ref: torch.nn.Module | None, reward_model: RewardModel,
                       tokenizer: PreTrainedTokenizerBase, world: Any, records: list[PromptRecord],
                       max_new_tokens: int, temperature: float, seed: int, batch_size: int = 48
                       ) -> dict[str, list]:
    """One sample per record: texts, RM score, gold utility, KL to `ref` (0 when it is None)."""
    policy.eval()
    lengths = [len(r.prompt) for r in records]
    order = sorted(range(len(records)), key=lambda i: lengths[i])  # similar lengths: less padding per batch
    out: dict[str, list] = {"texts": [""] * len(records), "rm": [0.0] * len(records),
                            "kl": [0.0] * len(records)}
    for s in range(0, len(order), batch_size):
        idx = order[s: s + batch_size]
        torch.manual_seed(seed + s)
        rollout = sample_rollout(policy, tokenizer, [records[i].prompt for i in idx], max_new_tokens, temperature)
        rm = score_rollout(reward_model, rollout).tolist()
        kl = [0.0] * len(idx)
        if ref is not None:
            kl = (response_logprobs(policy, rollout, temperature)
                  - response_logprobs(ref, rollout, temperature)).sum(1).tolist()
        for j, i in enumerate(idx):
            out["texts"][i], out["rm"][i], out["kl"][i] = rollout.texts[j], rm[j], kl[j]
    rows = score_samples(world, records, out["texts"])
    out["gold"] = [r["gold"] for r in rows]
    out["rows"] = rows
    return out


def summarize_policy(measured: dict[str, list]) -> dict[str, float]:
    """Means and 95% half-widths of RM score, gold utility and KL."""
    out = {}
    for key in ("rm", "gold", "kl"):
        out[key], out[f"{key}_ci"] = mean_ci(measured[key])
    return out


@torch.no_grad()
def best_of_n(policy: torch.nn.Module, reward_model: RewardModel, tokenizer: PreTrainedTokenizerBase, world: Any,
              records: list[PromptRecord], n_max: int, max_new_tokens: int, temperature: float, seed: int
              ) -> list[dict[str, float]]:
    """Best-of-n from `policy` for n = 1, 2, 4, ... n_max: mean RM score and gold of the RM's favourite sample."""
    repeated = [r for r in records for _ in range(n_max)]
    m = sample_and_measure(policy, None, reward_model, tokenizer, world, repeated, max_new_tokens, temperature, seed)
    rm = np.array(m["rm"]).reshape(len(records), n_max)
    gold = np.array(m["gold"]).reshape(len(records), n_max)
    out = []
    n = 1
    while n <= n_max:
        best = rm[:, :n].argmax(1)
        rows = np.arange(len(records))
        out.append({"n": n, "kl": math.log(n) - (n - 1) / n, "rm": float(rm[rows, best].mean()),
                    "gold": float(gold[rows, best].mean())})
        n *= 2
    return out
