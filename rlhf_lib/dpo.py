"""Direct preference optimisation (notebook 07; Rafailov et al., 2023): learning from the rankings without RL.

PPO needs a reward model, sampling and a value model to maximise E[r(x, y)] - beta * KL(pi || pi_SFT). That problem
has a closed-form optimum, pi*(y|x) proportional to pi_SFT(y|x) exp(r(x, y) / beta), so a reward is implied by the
policy itself: r(x, y) = beta * log(pi(y|x) / pi_SFT(y|x)) up to a term of x. Put that reward into the reward
model's pairwise loss and the policy trains directly on the labelers' comparisons (`rlhf_lib.losses.dpo_loss`):

    L = - log sigmoid(beta * [(log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))])

Each log pi(y|x) is a sum over the completion's tokens (and its EOS), with the prompt as context only: the labels of
`rlhf_lib.sft.encode_example`. The reference never trains, so its log-probabilities are read once, before the first
step. The data are the reward model's: every pair of a K-way ranking, as in its ablation (`reward_model.as_pairs`).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from rlhf_lib.config import DPOConfig, SpeedConfig
from rlhf_lib.losses import dpo_loss, dpo_rewards
from rlhf_lib.reward_model import Comparison, as_pairs
from rlhf_lib.rollout import logprobs_from_logits
from rlhf_lib.sft import IGNORE, collate, encode_example
from rlhf_lib.speed import autocast
from rlhf_lib.training import adamw, cosine_lr, my_rows, optimizer_step, read_losses, set_lr

Example = tuple[list[int], list[int]]
"""(input_ids, labels) of one prompt + completion + EOS, labels IGNORE on the prompt (`sft.encode_example`)."""


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: a labeler preferred `chosen` (y_w) to `rejected` (y_l) as the answer to `prompt` (x)."""

    prompt: str
    chosen: str
    rejected: str


def preference_pairs(comparisons: list[Comparison]) -> list[PreferencePair]:
    """All C(K,2) pairs of each ranking, the better-ranked completion chosen. Tied completions were not ordered by
    the labeler, so their pairs carry no preference and are skipped: a ranking gives C(K,2) minus its tied pairs."""
    return [PreferencePair(c.prompt, c.completions[0], c.completions[1]) for c in as_pairs(comparisons)]


def encode_pairs(tokenizer: PreTrainedTokenizerBase, pairs: list[PreferencePair], max_len: int
                 ) -> list[tuple[Example, Example]]:
    """(chosen, rejected) examples of every pair, each prompt + completion + EOS as SFT encodes it."""
    return [(encode_example(tokenizer, p.prompt, p.chosen, max_len),
             encode_example(tokenizer, p.prompt, p.rejected, max_len)) for p in pairs]


def collate_pairs(examples: list[tuple[Example, Example]], pad_id: int) -> dict[str, torch.Tensor]:
    """One right-padded batch of 2B rows: the B chosen sequences, then the B rejected ones (TRL's layout)."""
    return collate([c for c, _ in examples] + [r for _, r in examples], pad_id)


def sequence_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """log pi(y|x) of each row: log-probabilities summed over the labelled (response) tokens. (B, T) -> (B,).

    As in `sft.sft_loss`, only positions that predict a response token go through the unembedding."""
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    hidden = model.transformer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]  # (B, T, d)
    logits = model.lm_head(hidden[:, :-1][keep]).float()                                              # (N, V)
    token_logps = logprobs_from_logits(logits[None], targets[keep][None])[0]                          # (N,)
    per_row = torch.zeros(len(targets), dtype=token_logps.dtype, device=token_logps.device)
    return per_row.index_add(0, keep.nonzero()[:, 0], token_logps)                                    # row sums


@torch.no_grad()
def pair_logps(model: torch.nn.Module, examples: list[tuple[Example, Example]], batch_size: int, pad_id: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(y_w|x) and log pi(y_l|x) of every pair, (n,) each, without gradients (the frozen reference, or a
    model being evaluated). The model is put in eval mode for the passes and restored after."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chosen, rejected = [], []
    for s in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate_pairs(examples[s: s + batch_size], pad_id).items()}
        c, r = sequence_logps(model, batch).chunk(2)
        chosen.append(c)
        rejected.append(r)
    model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


def reward_margins(policy: torch.nn.Module, ref: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                   pairs: list[PreferencePair], beta: float, max_len: int, batch_size: int = 16) -> torch.Tensor:
    """Implicit reward of the chosen minus that of the rejected completion, per pair (n,): positive where the policy
    has moved towards the labeler's choice relative to `ref`; (margins > 0).mean() is the preference accuracy."""
    examples = encode_pairs(tokenizer, pairs, min(max_len, policy.config.n_positions))
    chosen, rejected = dpo_rewards(*pair_logps(policy, examples, batch_size, tokenizer.pad_token_id),
                                   *pair_logps(ref, examples, batch_size, tokenizer.pad_token_id), beta)
    return chosen - rejected


def pair_batches(examples: list[tuple[Example, Example]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Pair indices in batches of similar length (less padding, as `sft.batches`), in random order."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    length = lambda i: max(len(examples[i][0][0]), len(examples[i][1][0]))  # noqa: E731
    chunk = 32 * batch_size  # sort by length within chunks of the shuffled order: random yet similar lengths
    order = [i for s in range(0, len(order), chunk) for i in sorted(order[s: s + chunk], key=length)]
    out = [order[s: s + batch_size] for s in range(0, len(order), batch_size)]
    rng.shuffle(out)
    return out


def train_dpo(policy: torch.nn.Module, ref: torch.nn.Module | None, tokenizer: PreTrainedTokenizerBase,
              pairs: list[PreferencePair], cfg: DPOConfig, seed: int, progress: bool = True,
              speed: SpeedConfig = SpeedConfig(), evaluate: Any = None, n_evals: int = 0) -> dict[str, Any]:
    """Minimise `dpo_loss` over `pairs` for `cfg.epochs`, in place. Returns the history: per step the loss, the mean
    implicit-reward margin (chosen minus rejected) and the fraction of pairs with a positive margin.

    `ref` is read once, before the first step, without gradients, and never changes. None: the policy as it is now
    (the usual reference, the SFT model that DPO starts from), which saves holding a second copy.
    `evaluate(policy, step) -> dict` runs before the first step and `n_evals` times evenly over training (the last
    one after the last step); its rows go to `history["eval"]` (notebook 07's DPO curve on the frontier)."""
    device = next(policy.parameters()).device
    pad_id = tokenizer.pad_token_id
    examples = encode_pairs(tokenizer, pairs, min(cfg.max_len, policy.config.n_positions))
    ref_chosen, ref_rejected = pair_logps(policy if ref is None else ref, examples, cfg.batch_size, pad_id)
    total = math.ceil(len(examples) / cfg.batch_size) * cfg.epochs
    optimizer = adamw(policy, cfg.lr, cfg.weight_decay, speed=speed)
    history: dict[str, Any] = {"step": [], "loss": [], "margin": [], "accuracy": [], "eval": []}
    losses, margins = [], []  # kept on the device and read once at the end (a GPU would wait at every read)
    due = {math.ceil(total * k / n_evals) for k in range(1, n_evals + 1)} if evaluate is not None else set()
    if evaluate is not None:
        history["eval"].append({"step": 0, **evaluate(policy, 0)})
    t0, step = time.time(), 0
    policy.train()
    bar = tqdm(total=total, desc="DPO", disable=not progress)
    for epoch in range(cfg.epochs):
        for idx in pair_batches(examples, cfg.batch_size, random.Random(seed * 1000 + epoch)):
            idx = idx[my_rows(len(idx))]  # this process's pairs (all of them in one process)
            set_lr(optimizer, cosine_lr(step, total, cfg.warmup_steps, cfg.lr, cfg.min_lr))
            batch = {k: v.to(device) for k, v in collate_pairs([examples[i] for i in idx], pad_id).items()}
            with autocast(device, speed):
                chosen, rejected = sequence_logps(policy, batch).float().chunk(2)
            ref_c, ref_r = ref_chosen[idx].to(device).float(), ref_rejected[idx].to(device).float()
            loss = dpo_loss(chosen, rejected, ref_c, ref_r, cfg.beta)
            optimizer_step(policy, optimizer, loss, cfg.grad_clip)
            r_c, r_r = dpo_rewards(chosen.detach(), rejected.detach(), ref_c, ref_r, cfg.beta)
            losses.append(loss.detach())
            margins.append(r_c - r_r)
            step += 1
            history["step"].append(step)
            bar.update(1)
            if step in due:
                history["eval"].append({"step": step, **evaluate(policy, step)})
                policy.train()  # evaluation samples in eval mode
    bar.close()
    history["loss"] = read_losses(losses, "DPO loss", f"lower dpo.lr (now {cfg.lr}).")
    history["margin"] = torch.stack([m.mean() for m in margins]).tolist()
    history["accuracy"] = torch.stack([(m > 0).float().mean() for m in margins]).tolist()
    history["train_seconds"] = time.time() - t0
    return history
