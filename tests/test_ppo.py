"""PPO, number by number: rewards, GAE, the clipped losses, the pretraining term, and the training loop's guards."""

import copy
import dataclasses

import pytest
import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import PPOConfig, SpeedConfig, get_profile
from rlhf_lib.data import PromptRecord
from rlhf_lib.ppo import (AdaptiveKLController, gae, kl_penalized_rewards, last_index, masked_whiten, policy_loss,
                          ptx_loss, value_loss)
from rlhf_lib.ppo_trainer import train_ppo
from rlhf_lib.reward_model import RewardModel
from rlhf_lib.rollout import (Rollout, length_grouped_minibatches, response_logprobs, response_values,
                              sample_rollout, score_rollout, stack_pieces)
from rlhf_lib.sampling import response_mask
from rlhf_lib.tokenizer import train_tokenizer

TEXTS = ["Q: Where does Mira live?\nA: Mira lives in Oakridge.", "Please be kind. Mira lives in Oakridge.",
         "Tell me about the fox. The fox eats berries."] * 40
PROMPTS = ["Q: Where does Mira live?\nA:", "Tell me about the fox.", "Please", "Q: Who lives in Oakridge? Tell me.\nA:"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def base_cfg():
    return get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 64}).base


@pytest.fixture()
def policy(tokenizer, base_cfg):
    return bm.new_model(base_cfg, tokenizer, seed=0).eval()


def records(n: int) -> list[PromptRecord]:
    return [PromptRecord(prompt_id=f"p{i}", prompt=PROMPTS[i % len(PROMPTS)], user_id="u", kind="plain",
                         category="open_qa", task={}) for i in range(n)]


def rollout_of(policy, tokenizer, prompts=PROMPTS, n_new=8, seed=0) -> Rollout:
    torch.manual_seed(seed)
    return sample_rollout(policy, tokenizer, prompts, n_new)


# ---------------------------------------------------------------------------------------------------------------
# The objective's pieces


def gae_loop(rewards, values, mask, gamma, lam):
    """The textbook reverse loop, one episode at a time, over its real tokens only."""
    adv = torch.zeros_like(rewards)
    for b in range(len(rewards)):
        n = int(mask[b].sum())
        last = 0.0
        for t in reversed(range(n)):
            next_value = values[b, t + 1] if t + 1 < n else 0.0
            delta = rewards[b, t] + gamma * next_value - values[b, t]
            last = delta + gamma * lam * last
            adv[b, t] = last
    return adv, (adv + values) * mask


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0), (0.9, 0.0)])
def test_gae_equals_the_reverse_loop(gamma, lam):
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(5, 9, generator=g, dtype=torch.float64), torch.randn(5, 9, generator=g,
                                                                                        dtype=torch.float64)
    mask = torch.zeros(5, 9, dtype=torch.float64)
    for b, n in enumerate([9, 1, 4, 7, 2]):
        mask[b, :n] = 1
    rewards, values = rewards * mask, values * mask
    adv, ret = gae(rewards, values, mask, gamma, lam)
    ref_adv, ref_ret = gae_loop(rewards, values, mask, gamma, lam)
    torch.testing.assert_close(adv, ref_adv)
    torch.testing.assert_close(ret, ref_ret)
    # garbage after the end of an episode must not leak into its advantages
    noisy = values + (1 - mask) * 100.0
    torch.testing.assert_close(gae(rewards, noisy, mask, gamma, lam)[0], ref_adv)


def test_score_lands_on_the_last_real_token_and_kl_is_per_token():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.float)
    logprobs = torch.full((3, 5), -1.0) * mask
    ref = torch.full((3, 5), -1.5) * mask
    rewards, kl = kl_penalized_rewards(torch.tensor([10.0, 20.0, 30.0]), logprobs, ref, mask, beta=0.1)
    assert last_index(mask).tolist() == [2, 4, 0]
    expected = -0.1 * 0.5 * mask
    expected[0, 2] += 10
    expected[1, 4] += 20
    expected[2, 0] += 30
    torch.testing.assert_close(rewards, expected)
    torch.testing.assert_close(kl.sum(1), torch.tensor([1.5, 2.5, 0.5]))


def test_a_cut_off_rollout_of_a_prompt_that_fills_the_context_still_fits_with_its_eos(policy, tokenizer):
    """A prompt longer than the context is cut from the left to leave room for the response and for the EOS that
    `score_rollout` appends to a cut-off response: otherwise the RM reads a position past n_positions."""
    rm = RewardModel.from_lm(copy.deepcopy(policy)).eval()
    n_positions, n_new = policy.config.n_positions, 12
    ro = rollout_of(policy, tokenizer, prompts=[" ".join(PROMPTS * 20), PROMPTS[0]], n_new=n_new)
    assert ro.input_ids.shape[1] == n_positions - 1  # prompt + response, one slot left
    assert not ro.ended.all()  # the untrained policy runs to the limit
    assert torch.isfinite(score_rollout(rm, ro)).all()


def test_rm_score_of_a_rollout_is_read_at_its_eos_for_every_padding_layout(policy, tokenizer, base_cfg):
    rm = RewardModel.from_lm(bm.new_model(base_cfg, tokenizer, seed=1)).eval()
    ro = rollout_of(policy, tokenizer, n_new=10)
    ro.response_ids[0, 3] = tokenizer.eos_token_id  # the untrained policy never ends: end the first response early
    ro.mask = response_mask(ro.response_ids, tokenizer.eos_token_id).float()
    ro.response_ids = ro.response_ids.masked_fill(ro.mask == 0, tokenizer.pad_token_id)
    assert ro.prompt_mask[:, 0].sum() < len(PROMPTS)  # some prompts are left-padded
    scores = score_rollout(rm, ro)
    for b in range(len(PROMPTS)):
        ids = ro.input_ids[b][ro.attention_mask[b].bool()]  # the episode alone: no padding anywhere
        if ro.ended[b]:
            assert ids[-1] == tokenizer.eos_token_id
        else:  # cut off by the length limit: read at an appended EOS, as the RM's cut-off training completions are
            ids = torch.cat([ids, torch.tensor([tokenizer.eos_token_id])])
        alone = rm(ids[None], torch.ones(1, len(ids), dtype=torch.long))
        torch.testing.assert_close(scores[b: b + 1], alone, atol=1e-5, rtol=1e-4)
    assert not ro.ended.all() and ro.ended.any(), "the check needs both finished and cut-off responses"


def test_rollout_masks_everything_after_the_first_eos(policy, tokenizer):
    ro = rollout_of(policy, tokenizer, n_new=40)
    for b in range(len(PROMPTS)):
        n = int(ro.mask[b].sum())
        resp = ro.response_ids[b].tolist()
        assert tokenizer.eos_token_id not in resp[: n - 1]
        assert all(t == tokenizer.pad_token_id for t in resp[n:])
        assert (resp[n - 1] == tokenizer.eos_token_id) == bool(ro.ended[b])


def test_static_kv_cache_samples_the_same_responses(policy, tokenizer):
    dynamic = rollout_of(policy, tokenizer, seed=3)
    torch.manual_seed(3)
    static = sample_rollout(policy, tokenizer, PROMPTS, 8, static_cache=True)
    assert torch.equal(dynamic.response_ids, static.response_ids) and torch.equal(dynamic.mask, static.mask)


def test_left_padding_does_not_change_log_probs(policy, tokenizer):
    ro = rollout_of(policy, tokenizer, n_new=8)
    batch = response_logprobs(policy, ro)
    for b in range(len(PROMPTS)):
        alone = response_logprobs(policy, ro.select(torch.tensor([b])))  # trimmed: no left padding
        torch.testing.assert_close(batch[b: b + 1], alone, atol=1e-5, rtol=1e-4)


def test_temperature_is_applied_when_scoring(policy, tokenizer):
    ro = rollout_of(policy, tokenizer)
    logits_t1 = response_logprobs(policy, ro, 1.0)
    logits_t2 = response_logprobs(policy, ro, 2.0)
    assert not torch.allclose(logits_t1, logits_t2)


def test_equal_policy_and_reference_give_zero_kl(policy, tokenizer):
    ro = rollout_of(policy, tokenizer)
    lp, ref = response_logprobs(policy, ro), response_logprobs(copy.deepcopy(policy), ro)
    rewards, kl = kl_penalized_rewards(torch.ones(len(PROMPTS)), lp, ref, ro.mask, beta=0.5)
    assert kl.abs().max() == 0
    assert rewards.sum().item() == pytest.approx(len(PROMPTS))


def test_clipping_stops_the_gradient_outside_the_trust_region():
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1, 0.9]])).requires_grad_(True)  # ratios 1.5, 0.5, 1.1, 0.9
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    loss, stats = policy_loss(new, old, adv, torch.ones(1, 4), clip=0.2)
    loss.backward()
    assert new.grad[0, 0] == 0 and new.grad[0, 1] == 0        # pushed further out: clipped, no gradient
    assert new.grad[0, 2] != 0 and new.grad[0, 3] != 0        # inside [0.8, 1.2]: gradient flows
    assert stats["clipfrac"].item() == 0.5
    # the other side: a bad action whose ratio already fell keeps its gradient (the max keeps the unclipped term)
    new2 = torch.log(torch.tensor([[0.5]])).requires_grad_(True)
    policy_loss(new2, torch.zeros(1, 1), torch.tensor([[1.0]]), torch.ones(1, 1), clip=0.2)[0].backward()
    assert new2.grad[0, 0] != 0


def test_value_loss_is_clipped_around_the_old_values():
    old, ret, mask = torch.zeros(1, 2), torch.tensor([[1.0, 1.0]]), torch.ones(1, 2)
    v = torch.tensor([[0.5, 0.1]], requires_grad=True)
    loss, frac = value_loss(v, old, ret, mask, clip=0.2)
    loss.backward()
    # 0.5 moved beyond the clip: the loss uses the clipped (worse) value, gradient 0; 0.1 is inside
    assert loss.item() == pytest.approx(0.5 * ((1 - 0.2) ** 2 + (1 - 0.1) ** 2) / 2)
    assert v.grad[0, 0] == 0 and v.grad[0, 1] != 0 and frac.item() == 0.5


def test_ptx_loss_equals_the_language_model_loss(policy):
    x = torch.randint(2, 300, (3, 20))
    torch.testing.assert_close(ptx_loss(policy, x), policy(input_ids=x, labels=x).loss)


def test_masked_whiten_has_zero_mean_unit_variance_on_the_mask():
    g = torch.Generator().manual_seed(0)
    x, mask = torch.randn(4, 6, generator=g) * 3 + 2, (torch.rand(4, 6, generator=g) > 0.3).float()
    w = masked_whiten(x, mask)
    vals = w[mask.bool()]
    assert abs(vals.mean().item()) < 1e-5 and vals.std().item() == pytest.approx(1.0, abs=1e-4)
    assert (w[~mask.bool()] == 0).all()


def test_adaptive_kl_controller_moves_beta_toward_the_target():
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=1000)
    ctl.update(12.0, 100)
    assert ctl.beta == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=1000)
    ctl.update(3.0, 100)
    assert ctl.beta < 0.1


def test_length_grouped_minibatches_cover_every_episode_once(policy, tokenizer):
    ro = rollout_of(policy, tokenizer, prompts=PROMPTS * 3)
    groups = length_grouped_minibatches(ro, 5)
    assert sorted(torch.cat(groups).tolist()) == list(range(12))
    widths = [ro.select(g).prompt_ids.shape[1] for g in groups]
    assert widths[0] < ro.prompt_ids.shape[1]  # short prompts lose the padding of long ones


def test_forward_passes_in_length_pieces_give_the_minibatch_outputs(policy, tokenizer, base_cfg):
    ro = rollout_of(policy, tokenizer, prompts=PROMPTS * 3, n_new=10)
    value = RewardModel.from_lm(bm.new_model(base_cfg, tokenizer, seed=1))
    idx = torch.arange(12)
    order, pieces = ro.pieces(idx, 40)
    assert sorted(order.tolist()) == list(range(12)) and len(pieces) > 1
    assert max(p.input_ids.shape[1] for p in pieces) <= ro.input_ids.shape[1]
    assert min(p.input_ids.shape[1] for p in pieces) < ro.input_ids.shape[1]  # padding left out
    width = ro.mask.shape[1]
    for fn in (lambda r: response_logprobs(policy, r, 0.7), lambda r: response_values(value, r)):
        torch.testing.assert_close(stack_pieces([fn(p) for p in pieces], width), fn(ro)[order], atol=1e-5, rtol=1e-5)
    one_order, one = ro.pieces(idx, None)
    assert torch.equal(one_order, idx) and len(one) == 1


@pytest.mark.slow
def test_passes_in_pieces_train_like_one_pass(tokenizer, base_cfg):
    cfg = small_cfg(steps=2, lr=1e-2, value_lr=1e-2)
    states = []
    for budget in (None, 30):
        policy, ref, value, reward = parts(tokenizer, base_cfg)
        h = train_ppo(policy, ref, value, reward, tokenizer, records(8), cfg, seed=0, progress=False,
                      speed=SpeedConfig(cpu_pass_tokens=budget))
        states.append((policy.state_dict(), value.state_dict(), h["policy_loss"]))
    assert states[0][2] == pytest.approx(states[1][2], abs=1e-5)
    for one, piece in zip(states[0][:2], states[1][:2]):
        for k in one:
            torch.testing.assert_close(piece[k], one[k], atol=1e-4, rtol=1e-3)  # Adam steps are 1e-2 here


# ---------------------------------------------------------------------------------------------------------------
# Cross-checks against TRL's experimental PPO (trl 1.12.0), where it exposes the same computation


def test_whitening_and_masked_mean_match_trl():
    from trl.experimental.ppo.ppo_trainer import masked_mean as trl_mean
    from trl.experimental.ppo.ppo_trainer import masked_whiten as trl_whiten

    from rlhf_lib.ppo import masked_mean

    g = torch.Generator().manual_seed(1)
    x, mask = torch.randn(6, 10, generator=g), (torch.rand(6, 10, generator=g) > 0.2)
    torch.testing.assert_close(masked_whiten(x, mask.float()) * mask, trl_whiten(x, mask) * mask)
    torch.testing.assert_close(masked_mean(x, mask.float()), trl_mean(x, mask))


def test_truncation_matches_trl(policy, tokenizer):
    from trl.experimental.ppo.ppo_trainer import truncate_response

    torch.manual_seed(0)
    raw = torch.randint(0, 5, (6, 12))  # EOS (0) and PAD (1) often, at random places
    ours = raw.masked_fill(response_mask(raw, 0) == 0, 1)
    torch.testing.assert_close(ours, truncate_response(0, 1, raw))


class _TRLRewardAdapter(torch.nn.Module):
    """Our RewardModel as TRL's get_reward expects it: a backbone under `base_model_prefix` and a `score` head."""

    base_model_prefix = "backbone"

    def __init__(self, rm: RewardModel) -> None:
        super().__init__()
        self.backbone, self.score = rm.backbone, rm.head


def test_score_values_and_logprobs_match_trl(policy, tokenizer, base_cfg):
    from trl.experimental.ppo.ppo_trainer import forward as trl_forward
    from trl.experimental.utils import get_reward
    from trl.trainer.utils import selective_log_softmax

    rm = RewardModel.from_lm(bm.new_model(base_cfg, tokenizer, seed=2)).eval()
    ro = rollout_of(policy, tokenizer, n_new=12)
    p, mask = ro.prompt_ids.shape[1], ro.mask.bool()
    query_responses = ro.input_ids  # PAD in the padding, EOS kept: TRL's post-processed layout
    _, trl_score, _ = get_reward(_TRLRewardAdapter(rm), query_responses, tokenizer.pad_token_id, p)
    ended = ro.ended  # TRL reads a cut-off response at its last token; we append EOS first (`ending_with_eos`)
    torch.testing.assert_close(score_rollout(rm, ro)[ended], trl_score[ended], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rm(ro.input_ids, ro.attention_mask), trl_score, atol=1e-5, rtol=1e-4)
    full_value, _, _ = get_reward(_TRLRewardAdapter(rm), query_responses, tokenizer.pad_token_id, p)
    trl_values = full_value[:, p - 1: -1].squeeze(-1)
    torch.testing.assert_close(response_values(rm, ro)[mask], trl_values[mask], atol=1e-5, rtol=1e-4)
    temperature = 0.7
    logits = trl_forward(policy, query_responses, tokenizer.pad_token_id).logits[:, p - 1: -1] / (temperature + 1e-7)
    trl_logprobs = selective_log_softmax(logits, ro.response_ids)
    torch.testing.assert_close(response_logprobs(policy, ro, temperature)[mask], trl_logprobs[mask],
                               atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# The training loop


class TargetTokensReward(torch.nn.Module):
    """A toy reward: how many tokens of the sequence come from a target set (ids 2..V/4, specials excluded)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.high = vocab_size // 4

    def forward(self, input_ids, attention_mask):
        return ((input_ids >= 2) & (input_ids < self.high) & attention_mask.bool()).float().sum(1)


def small_cfg(**changes) -> PPOConfig:
    base = PPOConfig(steps=3, batch_size=8, minibatch_size=4, ppo_epochs=2, max_new_tokens=6, lr=1e-3,
                     value_lr=1e-3, checkpoint_every=1, eval_every=1)
    return dataclasses.replace(base, **changes)


def parts(tokenizer, base_cfg):
    policy = bm.new_model(base_cfg, tokenizer, seed=0).eval()
    value = RewardModel.from_lm(bm.new_model(base_cfg, tokenizer, seed=3))
    reward = RewardModel.from_lm(bm.new_model(base_cfg, tokenizer, seed=4))
    return policy, copy.deepcopy(policy), value, reward


def test_learning_rate_zero_changes_nothing_and_gives_ratio_one(tokenizer, base_cfg):
    policy, ref, value, reward = parts(tokenizer, base_cfg)
    before = copy.deepcopy(policy.state_dict()), copy.deepcopy(value.state_dict())
    h = train_ppo(policy, ref, value, reward, tokenizer, records(8), small_cfg(lr=0.0, value_lr=0.0), seed=0,
                  progress=False)
    for now, then in zip((policy.state_dict(), value.state_dict()), before):
        for k in then:
            assert torch.equal(now[k], then[k]), k
    assert all(abs(r - 1) < 1e-6 for r in h["ratio"]) and all(c == 0 for c in h["clipfrac"])
    assert all(k == 0 for k in h["kl"])


@pytest.mark.slow
def test_ppo_raises_a_toy_reward(tokenizer, base_cfg):
    policy, ref, value, _ = parts(tokenizer, base_cfg)
    cfg = small_cfg(steps=25, batch_size=16, minibatch_size=8, ppo_epochs=4, lr=1e-2, beta=0.0,
                    missing_eos_penalty=None, max_new_tokens=8, checkpoint_every=100)
    h = train_ppo(policy, ref, value, TargetTokensReward(len(tokenizer)), tokenizer, records(16), cfg, seed=0,
                  progress=False)
    first, last = sum(h["rm_score"][:3]) / 3, sum(h["rm_score"][-3:]) / 3
    assert last > first + 3.0, h["rm_score"]  # the prompts' share is constant: the responses earned it
    assert h["kl"][-1] > 0.1  # it got there by moving away from the reference


@pytest.mark.slow
def test_training_resumes_exactly_after_a_kill(tokenizer, base_cfg, tmp_path):
    cfg = small_cfg(steps=4, checkpoint_every=2, ptx_coef=0.5, ptx_batch_size=2, ptx_block_size=16)
    ptx_ids = torch.randint(2, 300, (500,))
    policy, ref, value, reward = parts(tokenizer, base_cfg)
    full = train_ppo(policy, ref, value, reward, tokenizer, records(8), cfg, seed=0, ptx_ids=ptx_ids,
                     progress=False)

    calls = {"n": 0}

    def dies_at_step_3(recs, texts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return [0.0] * len(texts)

    p2, ref2, v2, r2 = parts(tokenizer, base_cfg)
    with pytest.raises(KeyboardInterrupt):
        train_ppo(p2, ref2, v2, r2, tokenizer, records(8), cfg, seed=0, out_dir=tmp_path, ptx_ids=ptx_ids,
                  gold=dies_at_step_3, progress=False)
    p3, ref3, v3, r3 = parts(tokenizer, base_cfg)
    resumed = train_ppo(p3, ref3, v3, r3, tokenizer, records(8), cfg, seed=0, out_dir=tmp_path, ptx_ids=ptx_ids,
                        progress=False)
    assert resumed["step"] == [1, 2, 3, 4] and resumed["kl"] == pytest.approx(full["kl"])
    for k, v in policy.state_dict().items():
        torch.testing.assert_close(p3.state_dict()[k], v)
    # another seed (or config) never resumes this run's checkpoint
    p4, ref4, v4, r4 = parts(tokenizer, base_cfg)
    other = train_ppo(p4, ref4, v4, r4, tokenizer, records(8), cfg, seed=1, out_dir=tmp_path, ptx_ids=ptx_ids,
                      progress=False)
    assert other["kl"] != pytest.approx(full["kl"])
    # nor does a run on another reward model (a retrained RM makes the finished run's checkpoint stale) ...
    p5, ref5, v5, _ = parts(tokenizer, base_cfg)
    new_rm = RewardModel.from_lm(bm.new_model(base_cfg, tokenizer, seed=9))
    stale = train_ppo(p5, ref5, v5, new_rm, tokenizer, records(8), cfg, seed=0, out_dir=tmp_path, ptx_ids=ptx_ids,
                      progress=False)
    assert stale["step"] == [1, 2, 3, 4] and stale["rm_score"] != pytest.approx(full["rm_score"])
    # ... while the same inputs find the finished run and return it without training again
    p6, ref6, v6, r6 = parts(tokenizer, base_cfg)
    again = train_ppo(p6, ref6, v6, new_rm, tokenizer, records(8), cfg, seed=0, out_dir=tmp_path, ptx_ids=ptx_ids,
                      progress=False)
    assert again["rm_score"] == stale["rm_score"]
    for k, v in p5.state_dict().items():
        torch.testing.assert_close(p6.state_dict()[k], v)


def test_runaway_kl_and_nan_stop_with_a_clear_message(tokenizer, base_cfg):
    policy, ref, value, reward = parts(tokenizer, base_cfg)
    with pytest.raises(RuntimeError, match="running away"):
        train_ppo(policy, ref, value, reward, tokenizer, records(8), small_cfg(max_kl=-1.0), seed=0, progress=False)

    class NaNReward(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return torch.full((len(input_ids),), float("nan"))

    policy, ref, value, _ = parts(tokenizer, base_cfg)
    with pytest.raises(FloatingPointError, match="ppo.lr"):
        train_ppo(policy, ref, value, NaNReward(), tokenizer, records(8), small_cfg(), seed=0, progress=False)


def test_ptx_needs_pretraining_tokens(tokenizer, base_cfg):
    policy, ref, value, reward = parts(tokenizer, base_cfg)
    with pytest.raises(ValueError, match="ptx_ids"):
        train_ppo(policy, ref, value, reward, tokenizer, records(8), small_cfg(ptx_coef=1.0), seed=0,
                  progress=False)


def test_lora_reference_is_the_policy_with_adapters_off(tokenizer, base_cfg):
    from rlhf_lib.sft import with_lora

    policy, _, value, reward = parts(tokenizer, base_cfg)
    original = copy.deepcopy(policy)
    lora = with_lora(policy, r=4, alpha=8)
    h = train_ppo(lora, None, value, reward, tokenizer, records(8), small_cfg(lr=1e-2), seed=0, progress=False)
    assert h["kl"][0] == 0  # adapters start at zero: policy == reference
    assert h["kl"][-1] != 0
    ro = rollout_of(original, tokenizer)
    with lora.disable_adapter():
        torch.testing.assert_close(response_logprobs(lora, ro), response_logprobs(original, ro))


def test_runs_of_one_setup_measure_the_sft_model_once(tokenizer, base_cfg, tmp_path, monkeypatch):
    """Every run's curve starts at step 0, the SFT model itself: measured by the first run, reused by the next."""
    from rlhf_lib import policy_eval
    from rlhf_lib import ppo_trainer as T

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    policy, ref, value, reward = parts(tokenizer, base_cfg)
    monkeypatch.setattr(T, "new_policy_and_value", lambda cfg, s, c: (copy.deepcopy(policy), copy.deepcopy(value)))
    monkeypatch.setattr(T, "gold_scorer", lambda world: lambda recs, texts: [float(len(t)) for t in texts])
    measured = []

    def fake_measure(model, ref, rm, tok, world, recs, max_new_tokens, temperature, seed):
        measured.append(max_new_tokens)
        return {"rm": [1.0, 2.0], "gold": [3.0, 5.0], "kl": [0.0, 0.0]}

    monkeypatch.setattr(policy_eval, "sample_and_measure", fake_measure)
    cfg = get_profile("smoke", {"ppo.steps": 2, "ppo.eval_every": 1, "ppo.batch_size": 4, "ppo.minibatch_size": 2,
                                "ppo.ppo_epochs": 1, "ppo.max_new_tokens": 4})
    s = T.PPOSetup(ref=ref, reward_model=reward, tokenizer=tokenizer, world=None, prompts=records(8),
                   eval_records=records(2))
    first = T.run_ppo(cfg, s, "a", progress=False)
    second = T.run_ppo(cfg, s, "b", progress=False, beta=0.5)
    assert measured == [4] * 5  # steps 0, 1, 2 of the first run; steps 1, 2 of the second
    assert first["eval"][0] == second["eval"][0] and (first["eval"][0]["step"], first["eval"][0]["gold"]) == (0, 4.0)
    T.run_ppo(cfg, s, "c", progress=False, max_new_tokens=3)  # another sampling length measures SFT anew
    assert measured[5] == 3


def test_a_finished_run_is_loaded_and_side_by_side_runs_train_each_run_once(tokenizer, base_cfg, tmp_path,
                                                                              monkeypatch):
    """`run_ppo_runs`: each child trains its run and reports every rollout batch; this process then loads the
    finished runs from their checkpoints (no rollout at all) and returns the children's histories."""
    import queue

    from rlhf_lib import policy_eval, speed
    from rlhf_lib import ppo_trainer as T

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    policy, ref, value, reward = parts(tokenizer, base_cfg)
    monkeypatch.setattr(T, "new_policy_and_value", lambda cfg, s, c: (copy.deepcopy(policy), copy.deepcopy(value)))
    monkeypatch.setattr(T, "gold_scorer", lambda world: lambda recs, texts: [float(len(t)) for t in texts])
    monkeypatch.setattr(policy_eval, "sample_and_measure", lambda *a: {"rm": [1.0, 2.0], "gold": [3.0, 5.0],
                                                                       "kl": [0.0, 0.0]})
    cfg = get_profile("smoke", {"ppo.steps": 2, "ppo.batch_size": 4, "ppo.minibatch_size": 2, "ppo.ppo_epochs": 1,
                                "ppo.max_new_tokens": 4, "speed.side_by_side": 2, "device": "cpu"})
    s = T.PPOSetup(ref=ref, reward_model=reward, tokenizer=tokenizer, world=None, prompts=records(8),
                   eval_records=records(2))
    monkeypatch.setattr(T, "setup", lambda c: s)
    children: dict[str, dict] = {}

    def in_this_process(job, jobs, workers, total_ticks, desc, progress):  # stands in for the spawned children
        assert workers == 2 and total_ticks == cfg.ppo.steps + 3  # run "b" is one batch longer
        ticks = queue.Queue()
        for name, args in jobs.items():
            job(ticks, *args)
            children[name] = T.run_ppo(cfg, s, name, progress=False, **args[2])  # loaded: the child finished it
        assert sum(ticks.get() for _ in range(ticks.qsize())) == total_ticks  # the bar ends full, resumed or not
        monkeypatch.setattr(T, "sample_rollout", no_rollouts)  # from here on, this process must only load
        return {}

    def no_rollouts(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(speed, "side_by_side", in_this_process)
    runs = {"a": {}, "b": {"beta": 0.5, "steps": 3}}
    out = T.run_ppo_runs(cfg, s, runs, progress=False)
    monkeypatch.setattr(T, "sample_rollout", sample_rollout)
    again = T.run_ppo_runs(cfg, s, runs, progress=False)
    for name, steps in (("a", [1, 2]), ("b", [1, 2, 3])):
        assert out[name]["step"] == again[name]["step"] == children[name]["step"] == steps
        assert out[name]["kl"] == again[name]["kl"]
        for p, q in zip(out[name]["ema"].parameters(), again[name]["ema"].parameters()):
            torch.testing.assert_close(p, q)
    assert out["a"]["beta"] != out["b"]["beta"]
