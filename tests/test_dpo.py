"""DPO, number by number: the loss against a hand computation and against TRL's DPOTrainer, the pairs made from
rankings, the summed response log-probabilities, and a tiny training run that moves the margin the right way."""

import copy
import math
from itertools import combinations

import pytest
import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import DPOConfig, get_profile
from rlhf_lib.dpo import (PreferencePair, collate_pairs, encode_pairs, pair_logps, preference_pairs, reward_margins,
                          sequence_logps, train_dpo)
from rlhf_lib.losses import dpo_loss, dpo_rewards
from rlhf_lib.reward_model import Comparison
from rlhf_lib.sft import IGNORE
from rlhf_lib.tokenizer import train_tokenizer

PAIRS = [PreferencePair("Q: Where does Mira live?\nA:", " Mira lives in Oakridge.", " I do not know."),
         PreferencePair("Write a note to Tom.\n", "Dear Tom,\nPlease come over.\nBest wishes,\nMira", "No."),
         PreferencePair("Is the following statement true or false?\n\"Foxes eat fish.\"\n",
                        "False. Foxes eat berries.", "True. Foxes eat fish.")]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([p.prompt + p.chosen + p.rejected for p in PAIRS] * 50, vocab_size=300)


@pytest.fixture(scope="module")
def base_cfg():
    return get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 64}).base


# ---------------------------------------------------------------------------------------------------------------
# The loss


def test_dpo_loss_equals_a_hand_computation():
    pc, pr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])   # policy: chosen, rejected
    rc, rr = torch.tensor([-3.5, -4.0]), torch.tensor([-3.5, -3.0])   # reference: chosen, rejected
    # pair 1: 0.5 * ((-3 + 3.5) - (-4 + 3.5)) = 0.5 * 1 = 0.5;  pair 2: 0.5 * ((-5 + 4) - (-2 + 3)) = 0.5 * -2 = -1
    expected = (math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(1.0))) / 2  # -log sigmoid(z) = log(1 + e^-z)
    assert dpo_loss(pc, pr, rc, rr, beta=0.5).item() == pytest.approx(expected, rel=1e-6)
    chosen, rejected = dpo_rewards(pc, pr, rc, rr, beta=0.5)
    torch.testing.assert_close(chosen, torch.tensor([0.25, -0.5]))
    torch.testing.assert_close(rejected, torch.tensor([-0.25, 0.5]))


def test_policy_equal_to_reference_gives_log_2_and_zero_rewards():
    gen = torch.Generator().manual_seed(0)
    chosen, rejected = -10 * torch.rand(5, generator=gen), -10 * torch.rand(5, generator=gen)
    assert dpo_loss(chosen, rejected, chosen, rejected, beta=0.1).item() == pytest.approx(math.log(2))
    for reward in dpo_rewards(chosen, rejected, chosen, rejected, beta=0.1):
        assert torch.equal(reward, torch.zeros(5))


def test_gradient_raises_chosen_and_lowers_rejected():
    chosen, rejected = torch.tensor([-3.0], requires_grad=True), torch.tensor([-4.0], requires_grad=True)
    dpo_loss(chosen, rejected, torch.tensor([-3.0]), torch.tensor([-4.0]), beta=0.1).backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()  # descent moves chosen up, rejected down
    assert chosen.grad.item() == pytest.approx(-0.1 * 0.5)  # -beta * sigmoid(-0) at the reference


# ---------------------------------------------------------------------------------------------------------------
# Pairs from rankings


@pytest.mark.parametrize("ranks", [[1, 2, 3, 4], [2, 1, 2, 3], [1, 1, 2, 2, 3, 4, 5, 6, 6], [3, 3, 3], [2, 1]])
def test_pairs_from_a_ranking_skip_ties(ranks):
    comp = Comparison("x", [f"y{i}" for i in range(len(ranks))], ranks)
    pairs = preference_pairs([comp])
    tied = sum(ranks[i] == ranks[j] for i, j in combinations(range(len(ranks)), 2))
    assert len(pairs) == math.comb(len(ranks), 2) - tied
    rank_of = dict(zip(comp.completions, ranks))
    assert all(p.prompt == "x" and rank_of[p.chosen] < rank_of[p.rejected] for p in pairs)
    assert len({(p.chosen, p.rejected) for p in pairs}) == len(pairs)


def test_pairs_of_several_rankings_add_up():
    comps = [Comparison("a", ["1", "2", "3"], [1, 2, 3]), Comparison("b", ["4", "5", "6", "7"], [1, 1, 2, 3])]
    pairs = preference_pairs(comps)
    assert len(pairs) == 3 + (6 - 1)
    assert [p.prompt for p in pairs] == ["a"] * 3 + ["b"] * 5


# ---------------------------------------------------------------------------------------------------------------
# Log-probabilities of the responses


def test_sequence_logps_sum_the_response_tokens_only(tokenizer, base_cfg):
    """The batched, masked sum equals a slow one: each sequence alone, no padding, response positions summed."""
    model = bm.new_model(base_cfg, tokenizer, seed=0).eval()
    examples = encode_pairs(tokenizer, PAIRS, 64)
    batch = collate_pairs(examples, tokenizer.pad_token_id)
    got = sequence_logps(model, batch)
    seqs = [c for c, _ in examples] + [r for _, r in examples]
    for value, (ids, labels) in zip(got, seqs):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], -1)
        want = sum(float(logp[t - 1, ids[t]]) for t in range(1, len(ids)) if labels[t] != IGNORE)
        assert value.item() == pytest.approx(want, abs=1e-4)
    n_prompt = len(tokenizer(PAIRS[0].prompt, add_special_tokens=False)["input_ids"])
    assert (batch["labels"][0, :n_prompt] == IGNORE).all() and batch["labels"][0, n_prompt] != IGNORE


def test_dpo_loss_equals_trl_dpo_trainer(tokenizer, base_cfg, tmp_path):
    """TRL's DPOTrainer (trl 1.12.0, loss_type "sigmoid") tokenises, pads and scores the same pairs with the same
    policy and reference: same sequences, same loss and implicit rewards, pair by pair and for the whole batch."""
    from datasets import Dataset
    from trl import DPOConfig as TrlDPOConfig, DPOTrainer

    policy = bm.new_model(base_cfg, tokenizer, seed=0).eval()
    ref = bm.new_model(base_cfg, tokenizer, seed=1).eval()  # another model: the loss is not log 2
    beta = 0.5
    data = Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in PAIRS])
    args = TrlDPOConfig(output_dir=str(tmp_path), beta=beta, loss_type=["sigmoid"], report_to=[], max_length=None,
                        use_cpu=True, bf16=False)  # TRL defaults to bf16, which would wrap the reference in autocast
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=data, processing_class=tokenizer)
    policy.eval()

    examples = encode_pairs(tokenizer, PAIRS, 64)
    ours = collate_pairs(examples, tokenizer.pad_token_id)
    theirs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["labels"] != IGNORE, theirs["completion_mask"].bool())

    with torch.no_grad():
        logps = (*pair_logps(policy, examples, 8, tokenizer.pad_token_id),
                 *pair_logps(ref, examples, 8, tokenizer.pad_token_id))
        ours_loss = dpo_loss(*logps, beta)
        trl_loss = trainer.compute_loss(policy, theirs)
    torch.testing.assert_close(ours_loss, trl_loss)
    assert abs(ours_loss.item() - math.log(2)) > 1e-3

    chosen_r, rejected_r = dpo_rewards(*logps, beta)
    metrics = trainer._metrics["eval"]
    for i in range(len(PAIRS)):
        with torch.no_grad():
            trl_one = trainer.compute_loss(policy, trainer.data_collator([trainer.train_dataset[i]]))
        torch.testing.assert_close(dpo_loss(*(x[i: i + 1] for x in logps), beta), trl_one)
        assert chosen_r[i].item() == pytest.approx(metrics["rewards/chosen"][-1], abs=1e-5)
        assert rejected_r[i].item() == pytest.approx(metrics["rewards/rejected"][-1], abs=1e-5)
        assert logps[0][i].item() == pytest.approx(metrics["logps/chosen"][-1], abs=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# Training


def test_training_raises_the_margin_and_leaves_the_reference_alone(tokenizer, base_cfg):
    policy = bm.new_model(base_cfg, tokenizer, seed=0)
    ref = copy.deepcopy(policy).eval()
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    pairs = PAIRS * 4
    cfg = DPOConfig(beta=0.1, lr=3e-3, min_lr=3e-3, warmup_steps=1, batch_size=4, epochs=5, max_len=64)
    start = reward_margins(policy, ref, tokenizer, pairs, cfg.beta, cfg.max_len)
    assert torch.allclose(start, torch.zeros_like(start), atol=1e-5)  # the policy is the reference

    history = train_dpo(policy, ref, tokenizer, pairs, cfg, seed=0, progress=False)

    margins = reward_margins(policy, ref, tokenizer, pairs, cfg.beta, cfg.max_len)
    assert (margins > 0).all() and margins.mean() > 0.5
    assert len(history["loss"]) == 15 and history["loss"][0] == pytest.approx(math.log(2), abs=1e-4)
    assert history["loss"][-1] < 0.5 and history["margin"][-1] > history["margin"][0]
    assert all(torch.equal(v, before[k]) for k, v in ref.state_dict().items())
    assert all(p.grad is None for p in ref.parameters())


def test_no_reference_means_the_policy_before_training(tokenizer, base_cfg):
    cfg = DPOConfig(lr=3e-3, warmup_steps=1, batch_size=2, epochs=1, max_len=64)
    a, b = bm.new_model(base_cfg, tokenizer, seed=0), bm.new_model(base_cfg, tokenizer, seed=0)
    with_ref = train_dpo(a, copy.deepcopy(a), tokenizer, PAIRS, cfg, seed=0, progress=False)
    without = train_dpo(b, None, tokenizer, PAIRS, cfg, seed=0, progress=False)
    assert with_ref["loss"] == pytest.approx(without["loss"], abs=1e-6)
    assert with_ref["margin"] == pytest.approx(without["margin"], abs=1e-6)


def test_dpo_is_in_every_profile_with_the_papers_beta():
    assert get_profile("default").dpo.beta == 0.1 and get_profile("gpt2").dpo == DPOConfig()
    assert get_profile("smoke", {"dpo.beta": 0.5}).dpo.beta == 0.5
    assert get_profile("smoke").dpo.batch_size < get_profile("default").dpo.batch_size
