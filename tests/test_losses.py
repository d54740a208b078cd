import math
from collections import defaultdict
from itertools import combinations
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from rlhf_lib.losses import pairwise_accuracy, rm_loss


def expanded_rm_loss(scores: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """The slow, obvious version: loop over prompts and pairs."""
    per_prompt = []
    for s, r in zip(scores, ranks):
        terms = []
        for i, j in combinations(range(len(r)), 2):
            if r[i] < 0 or r[j] < 0 or r[i] == r[j]:
                continue
            w, l = (i, j) if r[i] < r[j] else (j, i)
            terms.append(-F.logsigmoid(s[w] - s[l]))
        if terms:
            per_prompt.append(torch.stack(terms).mean())
    return torch.stack(per_prompt).mean()


def random_case(gen: torch.Generator, batch: int = 5):
    ks = torch.randint(2, 10, (batch,), generator=gen)
    k_max = int(ks.max())
    scores = torch.randn(batch, k_max, generator=gen, dtype=torch.float64)
    ranks = torch.full((batch, k_max), -1)
    for b, k in enumerate(ks):
        ranks[b, :k] = torch.randint(1, int(k) + 1, (int(k),), generator=gen)  # ties happen
        if b == 0:  # at least one prompt without ties
            ranks[b, :k] = torch.randperm(int(k), generator=gen) + 1
    return scores.requires_grad_(True), ranks


@pytest.mark.parametrize("seed", range(10))
def test_rm_loss_equals_the_expanded_pairwise_loss_values_and_gradients(seed):
    gen = torch.Generator().manual_seed(seed)
    scores, ranks = random_case(gen)
    ours = rm_loss(scores, ranks)
    (g_ours,) = torch.autograd.grad(ours, scores)
    ref = expanded_rm_loss(scores, ranks)
    (g_ref,) = torch.autograd.grad(ref, scores)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g_ours, g_ref)


@pytest.mark.parametrize("k", range(2, 10))
def test_every_k_from_2_to_9(k):
    scores = torch.randn(3, k, dtype=torch.float64, requires_grad=True)
    ranks = torch.stack([torch.randperm(k) + 1 for _ in range(3)])
    torch.testing.assert_close(rm_loss(scores, ranks), expanded_rm_loss(scores, ranks))


def test_equal_scores_give_log_2():
    assert rm_loss(torch.zeros(4, 6), torch.arange(1, 7).repeat(4, 1)).item() == pytest.approx(math.log(2))


def test_ties_and_padding_do_not_count():
    scores = torch.tensor([[3.0, -1.0, 100.0, 7.0]])
    ranks = torch.tensor([[1, 2, -1, 2]])  # slot 2 is padding; completions 1 and 3 tie
    expected = (-F.logsigmoid(torch.tensor(4.0)) - F.logsigmoid(torch.tensor(-4.0))) / 2
    torch.testing.assert_close(rm_loss(scores, ranks), expected)
    assert pairwise_accuracy(scores, ranks) == (1, 2)


def test_prompt_with_only_ties_is_skipped():
    scores = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, 0.0]], requires_grad=True)
    ranks = torch.tensor([[1, 1, 1], [1, 2, -1]])
    torch.testing.assert_close(rm_loss(scores, ranks), -F.logsigmoid(torch.tensor(0.5)))
    assert rm_loss(scores[:1], ranks[:1]).item() == 0.0


def test_k2_matches_trl_reward_trainer_loss():
    """TRL's RewardTrainer.compute_loss (trl 1.12.0), run on the same chosen/rejected scores."""
    from trl import RewardTrainer

    gen = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(8, generator=gen), torch.randn(8, generator=gen)
    stub_model = SimpleNamespace(training=False)
    outputs = SimpleNamespace(logits=torch.cat([chosen, rejected]).unsqueeze(-1))
    fake_trainer = SimpleNamespace(
        model=stub_model, args=SimpleNamespace(center_rewards_coefficient=None),
        accelerator=SimpleNamespace(gather=lambda x: x, gather_for_metrics=lambda x: x),
        _total_train_tokens=0, _metrics=defaultdict(lambda: defaultdict(list)))
    trl_loss = RewardTrainer.compute_loss(fake_trainer, lambda **_: outputs, {"attention_mask": torch.ones(16, 3)})
    ours = rm_loss(torch.stack([chosen, rejected], dim=1), torch.tensor([[1, 2]]).repeat(8, 1))
    torch.testing.assert_close(ours, trl_loss)
