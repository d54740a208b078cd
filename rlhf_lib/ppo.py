"""The PPO-ptx objective, term by term (notebooks 04 and 05; the paper's equation (2)).

    objective(phi) = E_{(x,y) ~ pi_phi^RL} [ r_theta(x, y) - beta * log(pi_phi^RL(y|x) / pi^SFT(y|x)) ]
                     + gamma * E_{x ~ D_pretrain} [ log pi_phi^RL(x) ]

The first expectation is maximised with PPO on per-token rewards: the KL penalty is paid at every response token and
the reward model's score arrives at the last one. GAE turns those rewards into advantages with a value model, the
clipped surrogate updates the policy, and the second term (PPO-ptx) is plain language-model loss on pretraining
text, added to the policy loss with weight gamma (gamma = 0 is plain PPO). Every function here works on padded
(B, T) tensors with a `mask` that is 1 on response tokens (up to and including the first EOS) and 0 after.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `x` over the positions where `mask` is 1."""
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked positions (unbiased variance); 0 outside the mask."""
    mean = masked_mean(x, mask)
    n = mask.sum()
    var = masked_mean((x - mean) ** 2, mask) * n / (n - 1).clamp(min=1)
    out = (x - mean) * torch.rsqrt(var + eps)
    return (out if shift_mean else out + mean) * mask


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last masked position: where the EOS is, or the length limit. (B, T) -> (B,)."""
    positions = torch.arange(mask.shape[1], device=mask.device)
    return (mask * positions).argmax(dim=1)


def kl_penalized_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor,
                         mask: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards `-beta * (log pi - log pi_SFT)`, plus the RM score at the last real token.

    scores (B,), the rest (B, T). Returns (rewards, kl), both (B, T) and 0 after the end; `kl` is the per-token
    log-ratio of the sampled tokens, whose sum over a response estimates KL(pi || pi_SFT) for that prompt.
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -beta * kl
    rows = torch.arange(len(scores), device=scores.device)
    rewards[rows, last_index(mask)] += scores
    return rewards, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the response tokens. (B, T) each -> (advantages, returns).

        delta_t = r_t + gamma * V_{t+1} - V_t        (V after the last token is 0: the episode ends there)
        A_t     = sum_{k >= 0} (gamma * lam)^k * delta_{t+k}

    The sum is one matrix product with the (T, T) matrix of discounts (gamma * lam)^(k - t) for k >= t, so there is
    no Python loop over tokens. The paper's bandit setting has gamma = 1.
    """
    values = values * mask
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    deltas = (rewards + gamma * next_values - values) * mask
    t = torch.arange(rewards.shape[1], device=rewards.device)
    power = (t[None, :] - t[:, None]).to(rewards.dtype)                 # [t, k] = k - t
    discounts = torch.where(power >= 0, (gamma * lam) ** power.clamp(min=0), torch.zeros_like(power))
    advantages = (deltas @ discounts.T) * mask                         # A[b, t] = sum_k deltas[b, k] * disc[t, k]
    return advantages, (advantages + values) * mask


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate: mean over tokens of max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)).

    Where the clipped term is the larger one, its gradient is zero: the update stops at the trust region's edge.
    """
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    with torch.no_grad():
        stats = {"clipfrac": masked_mean((clipped > unclipped).float(), mask),
                 "approx_kl": masked_mean(0.5 * log_ratio ** 2, mask),
                 "ratio": masked_mean(ratio, mask)}
    return loss, stats


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss 0.5 * max((V - R)^2, (clip(V, V_old +- eps) - R)^2); returns (loss, clip fraction)."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    unclipped, clipped = (values - returns) ** 2, (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask).detach()


def ptx_loss(model: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """-E_{x ~ D_pretrain}[log pi(x)] per token: the language-model loss on pretraining windows (B, T).

    The objective adds `gamma * E[log pi(x)]`; as a loss to minimise that is `gamma * ptx_loss(model, x)`.
    """
    logits = model(input_ids=input_ids).logits[:, :-1]
    return F.cross_entropy(logits.flatten(0, 1).float(), input_ids[:, 1:].flatten())


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(R - V) / Var(R) over the response tokens: 1 is a perfect value model, 0 no better than a constant."""
    var_r = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    diff = returns - values
    var_d = masked_mean((diff - masked_mean(diff, mask)) ** 2, mask)
    return float(1 - var_d / var_r) if var_r > 0 else float("nan")


class FixedKLController:
    """The paper's choice: one beta for the whole run."""

    def __init__(self, beta: float) -> None:
        self.beta = beta

    def update(self, kl: float, n_episodes: int) -> None:
        pass


class AdaptiveKLController:
    """Ziegler et al. (2019): move beta so that the KL tracks a target (proportional control, clipped to +-20%).

        e = clip(KL / target - 1, -0.2, 0.2);   beta <- beta * (1 + e * n_episodes / horizon)
    """

    def __init__(self, beta: float, target: float, horizon: int) -> None:
        self.beta, self.target, self.horizon = beta, target, horizon

    def update(self, kl: float, n_episodes: int) -> None:
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.beta *= 1.0 + error * n_episodes / self.horizon
