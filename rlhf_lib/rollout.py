"""Rollouts: the paper's bandit environment (notebook 04; Section 3.5, "Reinforcement learning").

One episode is one prompt x, one sampled response y, and one reward r_theta(x, y) from the reward model at the end.
A batch of episodes is laid out as

    sequences = [ prompt, left-padded (B, P) | response, PAD after its first EOS (B, T) ]

so that token t of every response sits in column P + t. Everything the PPO update needs is read off these tensors:
the log-probabilities of the policy and of the frozen SFT reference, the values, and the score, all with position ids
counted from the first real token, so that padding never shifts a position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from rlhf_lib.reward_model import RewardModel
from rlhf_lib.sampling import encode_prompts, response_mask
from rlhf_lib.speed import length_pieces


@dataclass
class Rollout:
    """A batch of episodes. Shapes: B episodes, P prompt columns, T response columns."""

    prompt_ids: torch.Tensor       # (B, P) left-padded with PAD
    prompt_mask: torch.Tensor      # (B, P) 1 on real prompt tokens
    response_ids: torch.Tensor     # (B, T) PAD after the first EOS
    mask: torch.Tensor             # (B, T) 1.0 on response tokens up to and including the first EOS
    texts: list[str] = field(default_factory=list)  # decoded responses, without EOS
    eos_id: int = 0

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.mask.long()], dim=1)

    @property
    def ended(self) -> torch.Tensor:
        """(B,) True where the response stopped with EOS before the length limit."""
        last = self.mask.sum(1).long().clamp(min=1) - 1
        return self.response_ids.gather(1, last[:, None]).squeeze(1) == self.eos_id

    def select(self, idx: torch.Tensor) -> Rollout:
        """The episodes `idx` (a minibatch), without the prompt columns that are padding in all of them."""
        prompt_mask = self.prompt_mask[idx]
        first = int(prompt_mask.any(0).long().argmax()) if prompt_mask.any() else prompt_mask.shape[1] - 1
        return Rollout(self.prompt_ids[idx, first:], prompt_mask[:, first:], self.response_ids[idx], self.mask[idx],
                       [self.texts[i] for i in idx.tolist()] if self.texts else [], self.eos_id)

    def pieces(self, idx: torch.Tensor, max_tokens: int | None) -> tuple[torch.Tensor, list[Rollout]]:
        """The episodes `idx` as forward passes of at most `max_tokens` tokens (`speed.length_pieces`), each without
        the prompt and response columns that are padding in all its rows. Returns `idx` reordered as the pieces
        stack, and the pieces. None: one pass, `select(idx)`."""
        if max_tokens is None:
            return idx, [self.select(idx)]
        prompt_len, response_len = self.prompt_mask[idx].sum(1).tolist(), self.mask[idx].sum(1).long().tolist()
        pieces = length_pieces([p + r for p, r in zip(prompt_len, response_len)], max_tokens)
        out = []
        for piece in pieces:
            mb, width = self.select(idx[piece]), max(1, max(response_len[i] for i in piece))
            out.append(Rollout(mb.prompt_ids, mb.prompt_mask, mb.response_ids[:, :width], mb.mask[:, :width],
                               mb.texts, self.eos_id))
        return torch.cat([idx[piece] for piece in pieces]), out


def stack_pieces(outputs: list[torch.Tensor], width: int) -> torch.Tensor:
    """Per-token outputs (b, t) of the pieces of a minibatch, zero-padded to `width` columns and stacked."""
    return torch.cat([F.pad(o, (0, width - o.shape[1])) for o in outputs])


def length_grouped_minibatches(rollout: Rollout, size: int) -> list[torch.Tensor]:
    """Episode indices in minibatches of `size`, grouped by prompt length.

    Few-shot prompts are 5-10x longer than plain ones; a random minibatch almost always holds one, and every row is
    padded to it. Grouping by length (then trimming with `select`) halves the compute of every PPO pass here.
    """
    order = torch.argsort(rollout.prompt_mask.sum(1), stable=True)
    return [order[s: s + size] for s in range(0, len(order), size)]


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token (0 on left padding), as if there were no padding."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


@torch.no_grad()
def sample_rollout(policy: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                   max_new_tokens: int, temperature: float = 1.0, static_cache: bool = False) -> Rollout:
    """Sample one response per prompt with the KV cache (`generate`), softmax(logits / temperature), no top-k/p.

    Call `torch.manual_seed` before it for reproducible samples. `static_cache` preallocates the KV cache for the
    whole response instead of growing it by concatenation at every token (the GPU path; same samples).
    """
    policy.eval()
    device = next(policy.parameters()).device
    # one position stays free for the EOS the reward model reads a cut-off response at (`ending_with_eos`)
    limit = policy.config.n_positions - max_new_tokens - 1
    enc = {k: v.to(device) for k, v in encode_prompts(tokenizer, prompts, limit).items()}
    seqs = policy.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                           max_new_tokens=max_new_tokens, min_new_tokens=1, pad_token_id=tokenizer.pad_token_id,
                           eos_token_id=tokenizer.eos_token_id,
                           **({"cache_implementation": "static"} if static_cache else {}))
    response = seqs[:, enc["input_ids"].shape[1]:]
    mask = response_mask(response, tokenizer.eos_token_id)
    response = response.masked_fill(mask == 0, tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(response.masked_fill(response == tokenizer.eos_token_id, tokenizer.pad_token_id),
                                   skip_special_tokens=True)
    return Rollout(enc["input_ids"], enc["attention_mask"], response, mask.float(), texts, tokenizer.eos_token_id)


def response_logits(model: torch.nn.Module, rollout: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """Logits / temperature that predicted each response token. (B, T, V). Position P-1+t predicts token t."""
    mask = rollout.attention_mask
    t = rollout.response_ids.shape[1]
    logits = model(input_ids=rollout.input_ids, attention_mask=mask, position_ids=position_ids(mask),
                   logits_to_keep=t + 1).logits  # the unembedding only where it predicts the response
    return logits[:, :-1].float() / temperature


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token]. (B, T, V), (B, T) -> (B, T)."""
    return torch.gather(F.log_softmax(logits, dim=-1), 2, tokens[..., None]).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each token's sampling distribution. (B, T, V) -> (B, T)."""
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def response_logprobs(model: torch.nn.Module, rollout: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """log pi(y_t | x, y_<t) of every response token, with the sampling temperature. (B, T); 0 after the end."""
    return logprobs_from_logits(response_logits(model, rollout, temperature), rollout.response_ids) * rollout.mask


def response_values(value_model: RewardModel, rollout: Rollout) -> torch.Tensor:
    """V(x, y_<t): the value model's scalar at the token before each response token. (B, T); 0 after the end."""
    p = rollout.prompt_ids.shape[1]
    return value_model.token_scores(rollout.input_ids, rollout.attention_mask)[:, p - 1: -1] * rollout.mask


def ending_with_eos(rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask of prompt + response with EOS appended to each response that hit the length limit.

    The reward model learned every score at an EOS: its rankings include cut-off completions, and `encode_example`
    ends each of them with EOS. Read at a cut-off response's last word instead, it gives a number it was never
    trained to give (measured in the default profile: over 8 SFT samples per prompt, the RM's within-prompt
    correlation with the gold utility was 0.19 read that way and 0.38 with the EOS, 10% of the samples cut off).
    """
    unfinished = ~rollout.ended
    extra = torch.full((len(unfinished), 1), rollout.eos_id, dtype=rollout.response_ids.dtype,
                       device=rollout.response_ids.device)
    return (torch.cat([rollout.input_ids, extra], dim=1),
            torch.cat([rollout.attention_mask, unfinished[:, None].long()], dim=1))


@torch.no_grad()
def score_rollout(reward_model: RewardModel, rollout: Rollout, missing_eos_penalty: float | None = None
                  ) -> torch.Tensor:
    """r_theta(x, y) read at the EOS (appended where the response was cut off), minus a penalty for responses that
    never ended. (B,)."""
    return penalize_unfinished(reward_model(*ending_with_eos(rollout)).float(), rollout, missing_eos_penalty)


def penalize_unfinished(scores: torch.Tensor, rollout: Rollout, penalty: float | None) -> torch.Tensor:
    """Subtract `penalty` from the score of every response that hit the length limit without EOS (None: none)."""
    return scores if penalty is None else scores - penalty * (~rollout.ended).float()
