"""The paper's losses, and DPO's, as pure functions on tensors (notebooks 03 to 05, and 07).

Each docstring names its equation; each function is a few lines that a test checks against a slow, obvious version.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rm_loss(scores: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """The reward-model loss of Ouyang et al. (2022), Equation 1, with all C(K,2) comparisons of a prompt together:

        loss(theta) = - 1/C(K,2) * E_{(x, y_w, y_l) ~ D} [ log sigmoid(r(x, y_w) - r(x, y_l)) ]

    scores: (B, K) rewards r(x, y_k) of the K completions of each prompt, each computed once.
    ranks:  (B, K) integers, lower is better, equal ranks are ties (no comparison), -1 marks padding (K varies).
    Every pair with different ranks counts; the loss is averaged over the pairs of a prompt, then over prompts, so
    a prompt with K = 9 (36 pairs) weighs as much as one with K = 4 (6 pairs), as in the paper.
    """
    valid = ranks >= 0                                                    # (B, K)
    both = valid.unsqueeze(2) & valid.unsqueeze(1)                        # (B, K, K)
    wins = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & both               # wins[b, i, j]: y_i is preferred to y_j
    margin = scores.unsqueeze(2) - scores.unsqueeze(1)                    # r_i - r_j, (B, K, K)
    pair_loss = -F.logsigmoid(margin) * wins                              # only the compared pairs
    n_pairs = wins.sum(dim=(1, 2))                                        # (B,)
    has_pairs = n_pairs > 0
    per_prompt = pair_loss.sum(dim=(1, 2))[has_pairs] / n_pairs[has_pairs]
    return per_prompt.mean() if has_pairs.any() else scores.sum() * 0.0


def pairwise_accuracy(scores: torch.Tensor, ranks: torch.Tensor) -> tuple[int, int]:
    """(correctly ordered pairs, compared pairs): how often the higher score goes to the better-ranked completion."""
    valid = ranks >= 0
    wins = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)
    right = (scores.unsqueeze(2) > scores.unsqueeze(1)) & wins
    return int(right.sum()), int(wins.sum())


def dpo_rewards(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
                ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, beta: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO's implicit rewards (Rafailov et al., 2023), r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)), of the chosen
    and of the rejected completions: the reward the policy acts as if it maximised, read without a reward model (up
    to a term of the prompt alone, which cancels in every comparison). Arguments: summed response log-probabilities,
    (B,) each. Returns two (B,) tensors; chosen minus rejected is the margin that the loss pushes up."""
    return beta * (policy_chosen_logps - ref_chosen_logps), beta * (policy_rejected_logps - ref_rejected_logps)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """The DPO loss of Rafailov et al. (2023), Equation 7, averaged over the batch:

        L = - log sigmoid(beta * [(log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))])

    It is `rm_loss` for K = 2 with the implicit reward beta * log(pi / pi_ref) in place of r_theta: the policy is
    its own reward model, and the KL-regularised RL problem of PPO is solved in closed form instead of by sampling.
    Each argument holds summed response log-probabilities (prompt tokens excluded), (B,); y_w chosen, y_l rejected.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios)).mean()
