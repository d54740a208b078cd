"""The PPO loop: rollouts, KL-penalised rewards, GAE, clipped updates, the pretraining mix (notebooks 04 and 05).

    for each rollout batch:
        1. sample a response for each of `batch_size` prompts from the policy   (rlhf_lib.rollout)
        2. score them: policy and SFT log-probs, values, the RM score at the EOS
        3. rewards = -beta * KL per token + score at the last token; advantages by GAE   (rlhf_lib.ppo)
        4. `ppo_epochs` passes of minibatch updates: clipped policy loss (+ gamma * pretraining loss),
           clipped value loss
        5. log the diagnostics, update the EMA policy, checkpoint

The policy starts from SFT; the reference is a frozen SFT copy (with LoRA, the same model with its adapters off);
the value model is a separate copy of the reward model (the paper's choice), trained alongside. Models run in eval
mode throughout: dropout would make the log-probs of the update differ from those of the rollout.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass, field
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from rlhf_lib.base_model import get_batch
from rlhf_lib.config import PPOConfig, SpeedConfig
from rlhf_lib.data import PromptRecord
from rlhf_lib.ppo import (AdaptiveKLController, FixedKLController, explained_variance, gae, kl_penalized_rewards,
                          masked_mean, masked_whiten, policy_loss, ptx_loss, value_loss)
from rlhf_lib.reward_model import RewardModel
from rlhf_lib.rollout import (Rollout, entropy_from_logits, length_grouped_minibatches, logprobs_from_logits,
                              penalize_unfinished, response_logits, response_logprobs, response_values,
                              sample_rollout, score_rollout, stack_pieces)
from rlhf_lib.speed import adam, autocast, frozen, maybe_compile, on_cuda, pass_tokens
from rlhf_lib.training import (check_finite, fingerprint, load_checkpoint, my_rows, optimizer_step, process_info,
                               save_checkpoint)


def reference_context(policy: torch.nn.Module, ref: torch.nn.Module | None) -> Any:
    """With LoRA (no separate reference), the reference is the policy with its adapters switched off."""
    return policy.disable_adapter() if ref is None else contextlib.nullcontext()


@torch.no_grad()
def score_episodes(policy: torch.nn.Module, ref: torch.nn.Module | None, value_model: RewardModel,
                   reward_model: RewardModel, rollout: Rollout, plans: list[tuple[torch.Tensor, list[Rollout]]],
                   cfg: PPOConfig) -> dict[str, torch.Tensor]:
    """Step 2: everything the update needs that does not change during it (the "old" quantities), per episode.

    `plans`: each minibatch's episodes and its forward passes (`Rollout.pieces`)."""
    mask = rollout.mask
    out = {k: torch.zeros_like(mask) for k in ("logprobs", "ref_logprobs", "entropy", "values")}
    out |= {k: torch.zeros(len(mask), device=mask.device) for k in ("scores", "raw_scores")}
    for idx, pieces in plans:
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in out if k != "scores"}
        for mb in pieces:
            logits = response_logits(policy, mb, cfg.temperature)
            parts["logprobs"].append(logprobs_from_logits(logits, mb.response_ids) * mb.mask)
            parts["entropy"].append(entropy_from_logits(logits) * mb.mask)
            with reference_context(policy, ref):
                parts["ref_logprobs"].append(response_logprobs(ref or policy, mb, cfg.temperature))
            parts["values"].append(response_values(value_model, mb))
            parts["raw_scores"].append(score_rollout(reward_model, mb, None))
        for k, v in parts.items():
            out[k][idx] = torch.cat(v) if k == "raw_scores" else stack_pieces(v, mask.shape[1])
    out["scores"] = penalize_unfinished(out["raw_scores"], rollout, cfg.missing_eos_penalty)
    return out


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        if p.requires_grad:
            e.lerp_(p, 1.0 - decay)


# The loop's machinery, in the order `train_ppo` uses it: the run's state and its checkpoint, the prompts of each
# rollout batch, the forward passes of a minibatch, one minibatch update, the diagnostics of a rollout batch.

_STAT_KEYS = ("policy_loss", "value_loss", "clipfrac", "approx_kl", "value_clipfrac", "ptx_loss", "ratio")
"""The update's statistics, averaged over a rollout batch's minibatch steps (this order is the history's)."""


@dataclass
class _PPOState:
    """What training changes and a checkpoint restores, kept together so that resuming cannot forget a piece."""

    policy: torch.nn.Module
    value_model: RewardModel
    train_policy: torch.nn.Module
    """The update's passes of the policy: the policy itself, or its `torch.compile` wrapper (same weights)."""
    train_value: torch.nn.Module
    ema: torch.nn.Module
    opt: torch.optim.Optimizer
    value_opt: torch.optim.Optimizer
    kl_ctl: AdaptiveKLController | FixedKLController
    history: dict[str, Any]
    start: int = 0
    """The rollout batches already done (0 unless resumed)."""


def _new_state(policy: torch.nn.Module, value_model: RewardModel, train_policy: torch.nn.Module,
               train_value: torch.nn.Module, cfg: PPOConfig, device: torch.device, speed: SpeedConfig) -> _PPOState:
    """A fresh run: Adam for the policy's trainable weights and the value model, the EMA at the policy, beta."""
    opt = adam([p for p in policy.parameters() if p.requires_grad], device, speed, lr=cfg.lr, eps=1e-5)
    value_opt = adam(value_model.parameters(), device, speed, lr=cfg.value_lr, eps=1e-5)
    ema = copy.deepcopy(policy).requires_grad_(False)
    kl_ctl = AdaptiveKLController(cfg.beta, cfg.target_kl, cfg.kl_horizon) if cfg.adaptive_kl \
        else FixedKLController(cfg.beta)
    return _PPOState(policy, value_model, train_policy, train_value, ema, opt, value_opt, kl_ctl,
                     {"step": [], "eval": []})


def _resume(st: _PPOState, ckpt: Path | None, device: torch.device, cfg: PPOConfig, seed: int, inputs: str) -> None:
    """Continue a killed run where its checkpoint left it (nothing happens when there is no checkpoint of it)."""
    # resume only this very run: a checkpoint of other settings or made on other models is left alone
    state = load_checkpoint(ckpt, device, config=dataclasses.asdict(cfg), seed=seed, inputs=inputs) if ckpt else None
    if state is None:
        return
    st.policy.load_state_dict(state["policy"])
    st.value_model.load_state_dict(state["value"])
    st.ema.load_state_dict(state["ema"])
    st.opt.load_state_dict(state["opt"])
    st.value_opt.load_state_dict(state["value_opt"])
    st.kl_ctl.beta, st.history, st.start = state["beta"], state["history"], state["step"]
    print(f"PPO run already complete: loaded from {ckpt}." if st.start >= cfg.steps else
          f"Resuming PPO from rollout batch {st.start} ({ckpt}).")


def _save(st: _PPOState, ckpt: Path, cfg: PPOConfig, seed: int, inputs: str, done: int) -> None:
    """Checkpoint after `done` rollout batches, with what `_resume` checks (config, seed, inputs) and restores."""
    save_checkpoint(ckpt, config=dataclasses.asdict(cfg), seed=seed, inputs=inputs, step=done,
                    policy=st.policy.state_dict(), value=st.value_model.state_dict(), ema=st.ema.state_dict(),
                    opt=st.opt.state_dict(), value_opt=st.value_opt.state_dict(), beta=st.kl_ctl.beta,
                    history=st.history)


def _prompt_order(n_prompts: int, cfg: PPOConfig, seed: int) -> list[int]:
    """Every rollout batch's prompts, fixed by the seed alone (a resumed run sees the same ones): shuffled passes."""
    rng = random.Random(seed)
    return [i for _ in range(math.ceil(cfg.steps * cfg.batch_size / n_prompts) + 1)
            for i in rng.sample(range(n_prompts), n_prompts)]


def _n_processes(cfg: PPOConfig) -> int:
    """Data parallel: each process rolls out and trains on an equal share of every batch and minibatch."""
    n_proc = process_info()[1]
    if cfg.batch_size % n_proc or cfg.minibatch_size % n_proc:
        raise ValueError(f"ppo.batch_size ({cfg.batch_size}) and ppo.minibatch_size ({cfg.minibatch_size}) must be "
                         f"multiples of the number of processes ({n_proc}).")
    return n_proc


def _batch(prompts: list[PromptRecord], order: list[int], step: int, cfg: PPOConfig) -> list[PromptRecord]:
    """Rollout batch `step`'s prompts: this process's rows of them (all of them in a single process)."""
    batch = [prompts[i] for i in order[step * cfg.batch_size: (step + 1) * cfg.batch_size]]
    return batch[my_rows(len(batch))]


def _seed_step(seed: int, step: int) -> torch.Generator:
    """Seed a batch's sampling by (seed, step) alone, so a resumed run draws what an unbroken one did.

    Returns the generator of the minibatch order and the pretraining windows."""
    torch.manual_seed(seed * 1_000_003 + step)
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _plans(rollout: Rollout, size: int, budget: int | None) -> list[tuple[torch.Tensor, list[Rollout]]]:
    """Minibatches of similar-length episodes, each as forward passes of at most `budget` tokens (less padding)."""
    return [rollout.pieces(idx, budget) for idx in length_grouped_minibatches(rollout, size)]


def _minibatch_logprobs(model: torch.nn.Module, pieces: list[Rollout], width: int,
                        temperature: float) -> torch.Tensor:
    """A minibatch's log-probs under `model`, from its passes (`_plans`), stacked as one (b, width) tensor."""
    return stack_pieces([response_logprobs(model, mb, temperature) for mb in pieces], width)


def _minibatch_values(value_model: RewardModel, pieces: list[Rollout], width: int) -> torch.Tensor:
    """A minibatch's values, from its passes (`_plans`), stacked as one fp32 (b, width) tensor."""
    return stack_pieces([response_values(value_model, mb) for mb in pieces], width).float()


def _update_minibatch(st: _PPOState, pieces: list[Rollout], mask: torch.Tensor, old: dict[str, torch.Tensor],
                      cfg: PPOConfig, ptx_ids: torch.Tensor | None, gen: torch.Generator, device: torch.device,
                      speed: SpeedConfig) -> dict[str, torch.Tensor]:
    """One step of each model on a minibatch (`old`: its old log-probs, values, advantages, returns); its stats.

    The statistics stay on the device: they are read once per rollout batch (`_mean_stats`), no GPU stall."""
    stats: dict[str, torch.Tensor] = {}
    with autocast(device, speed):
        new_logprobs = _minibatch_logprobs(st.train_policy, pieces, mask.shape[1], cfg.temperature)
        pg_loss, pg = policy_loss(new_logprobs, old["logprobs"], old["advantages"], mask, cfg.clip)
        loss = pg_loss
        if cfg.ptx_coef > 0:
            # pretraining windows, drawn as the pretraining loop draws them
            windows = get_batch(ptx_ids, cfg.ptx_block_size, cfg.ptx_batch_size, gen)[0]
            lm = ptx_loss(st.train_policy, windows.to(device))
            loss = loss + cfg.ptx_coef * lm
            stats["ptx_loss"] = lm.detach()
    optimizer_step(st.policy, st.opt, loss, cfg.grad_clip)
    with autocast(device, speed):
        values = _minibatch_values(st.train_value, pieces, mask.shape[1])
        v_loss, v_clip = value_loss(values, old["values"], old["returns"], mask, cfg.value_clip)
    optimizer_step(st.value_model, st.value_opt, v_loss, cfg.grad_clip)
    for k, v in (("policy_loss", pg_loss), ("value_loss", v_loss), ("value_clipfrac", v_clip),
                 ("clipfrac", pg["clipfrac"]), ("approx_kl", pg["approx_kl"]), ("ratio", pg["ratio"])):
        stats[k] = v.detach()
    return stats


def _mean_stats(stats: dict[str, list[torch.Tensor]], cfg: PPOConfig) -> dict[str, float]:
    """The rollout batch's mean statistics, read once; stops with advice when a loss is not finite."""
    stats_mean = {k: torch.stack(v).mean().item() if v else float("nan") for k, v in stats.items()}
    check_finite(torch.tensor(stats_mean["policy_loss"] + (stats_mean["ptx_loss"] if cfg.ptx_coef > 0 else 0.0)),
                 "The PPO policy loss", "lower ppo.lr or raise ppo.beta.")
    check_finite(torch.tensor(stats_mean["value_loss"]), "The value loss", "lower ppo.value_lr.")
    return stats_mean


def _diagnostics(step: int, cfg: PPOConfig, batch: list[PromptRecord], rollout: Rollout,
                 old: dict[str, torch.Tensor], rewards: torch.Tensor, kl_per_response: float, returns: torch.Tensor,
                 beta: float, stats_mean: dict[str, float], gold: Any) -> dict[str, float]:
    """The history's row of rollout batch `step`: what the curves of notebooks 04 and 05 plot."""
    return {"step": step + 1, "episodes": (step + 1) * cfg.batch_size, "rm_score": float(old["raw_scores"].mean()),
            "reward": float(rewards.sum(1).mean()), "kl": kl_per_response, "beta": beta,
            "entropy": float(masked_mean(old["entropy"], rollout.mask)),
            "response_length": float(rollout.mask.sum(1).mean()),
            "ended": float(rollout.ended.float().mean()),
            "explained_variance": explained_variance(old["values"], returns, rollout.mask),
            **stats_mean,
            "gold": float(np.mean(gold(batch, rollout.texts))) if gold else float("nan")}


def _record(history: dict[str, Any], row: dict[str, float], t0: float) -> None:
    """Append a diagnostics row, and the seconds since the run started, to the history's lists."""
    for k, v in row.items():
        history.setdefault(k, []).append(v)
    history.setdefault("seconds", []).append(time.time() - t0)


def _check_kl(row: dict[str, float], cfg: PPOConfig) -> None:
    """Stop a policy that runs away from SFT with advice, rather than train on for nothing."""
    if not math.isfinite(row["kl"]) or row["kl"] > cfg.max_kl:
        raise RuntimeError(f"The KL to the SFT model reached {row['kl']:.1f} nats per response at rollout batch "
                           f"{row['step']} (limit ppo.max_kl={cfg.max_kl}): the policy is running away from SFT. "
                           "Lower ppo.lr, raise ppo.beta, or turn on ppo.adaptive_kl.")


def _due(done: int, every: int, total: int) -> bool:
    """Periodic work (evaluation, checkpoint) runs every `every` rollout batches and after the last one."""
    return done % every == 0 or done == total


def train_ppo(policy: torch.nn.Module, ref: torch.nn.Module | None, value_model: RewardModel,
              reward_model: RewardModel, tokenizer: PreTrainedTokenizerBase, prompts: list[PromptRecord],
              cfg: PPOConfig, seed: int, out_dir: Path | None = None, ptx_ids: torch.Tensor | None = None,
              evaluate: Any = None, gold: Any = None, progress: bool = True, speed: SpeedConfig = SpeedConfig(),
              on_step: Any = None) -> dict[str, Any]:
    """Optimise `policy` (in place) with PPO; returns the history and `history["ema"]`, the EMA policy.

    `gold(records, texts) -> list[float]` scores samples with the simulated labelers' gold utility (diagnostics
    only: it never reaches the loss). `evaluate(policy, step) -> dict` runs every `cfg.eval_every` batches.
    Resumes from `out_dir/checkpoint.pt` after a kill. `speed` switches the GPU speed-ups (`rlhf_lib.speed`).
    `on_step(row)` sees each rollout batch's diagnostics as they are logged.
    """
    device = next(policy.parameters()).device
    for m in (policy, value_model):
        m.eval()  # no dropout: the update must see the log-probs the rollout saw
    inputs = fingerprint(policy, ref, value_model, reward_model, [r.prompt_id for r in prompts], ptx_ids)
    ref, reward_model = frozen(ref, speed), frozen(reward_model, speed)  # eval, no grads, bf16 on GPU
    train_policy, train_value = maybe_compile(policy, speed), maybe_compile(value_model, speed)  # the update's passes
    if cfg.ptx_coef > 0 and ptx_ids is None:
        raise ValueError("ppo.ptx_coef > 0 needs pretraining tokens: pass ptx_ids (see rlhf_lib.base_model).")
    st = _new_state(policy, value_model, train_policy, train_value, cfg, device, speed)
    ckpt = (out_dir / "checkpoint.pt") if out_dir else None
    _resume(st, ckpt, device, cfg, seed, inputs)
    order = _prompt_order(len(prompts), cfg, seed)
    t0 = time.time() - (st.history["seconds"][-1] if st.history.get("seconds") else 0.0)  # counts on after a resume
    if evaluate is not None and st.start == 0:
        st.history["eval"].append({"step": 0, **evaluate(st.ema, 0)})  # the SFT model itself, on the same prompts
    budget = pass_tokens(device, speed)  # on a CPU: forward passes of similar-length episodes, less padding
    n_proc = _n_processes(cfg)
    bar = tqdm(range(st.start, cfg.steps), desc="PPO", initial=st.start, total=cfg.steps, disable=not progress)
    for step in bar:
        batch = _batch(prompts, order, step, cfg)
        gen = _seed_step(seed, step)
        # 1-2. sample rollouts; score them: old and reference log-probs, values, RM scores
        with autocast(device, speed):
            rollout = sample_rollout(policy, tokenizer, [r.prompt for r in batch], cfg.max_new_tokens,
                                     cfg.temperature, static_cache=speed.static_cache and on_cuda(device))
            plans = _plans(rollout, cfg.minibatch_size // n_proc, budget)  # reused by every epoch
            old = score_episodes(policy, ref, value_model, reward_model, rollout, plans, cfg)
        # 3. per-token KL-penalised rewards, GAE advantages
        rewards, kl = kl_penalized_rewards(old["scores"], old["logprobs"], old["ref_logprobs"], rollout.mask,
                                           st.kl_ctl.beta)
        advantages, returns = gae(rewards, old["values"], rollout.mask, cfg.discount, cfg.gae_lambda)
        if cfg.whiten_advantages:
            advantages = masked_whiten(advantages, rollout.mask)
        # 4. epochs of clipped policy and value updates over minibatches (+ the PPO-ptx term); EMA after each
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in _STAT_KEYS}
        for _ in range(cfg.ppo_epochs):
            for g in torch.randperm(len(plans), generator=gen).tolist():
                idx, pieces = plans[g]
                mb_old = {"logprobs": old["logprobs"][idx], "values": old["values"][idx],
                          "advantages": advantages[idx], "returns": returns[idx]}
                mb_stats = _update_minibatch(st, pieces, rollout.mask[idx], mb_old, cfg, ptx_ids, gen, device, speed)
                update_ema(st.ema, policy, cfg.ema_decay)
                for k, v in mb_stats.items():
                    stats[k].append(v)
        stats_mean = _mean_stats(stats, cfg)
        # 5. diagnostics (and the adaptive KL controller's step)
        kl_per_response = float(kl.sum(1).mean())
        st.kl_ctl.update(kl_per_response, len(batch))
        row = _diagnostics(step, cfg, batch, rollout, old, rewards, kl_per_response, returns, st.kl_ctl.beta,
                           stats_mean, gold)
        _record(st.history, row, t0)
        bar.set_postfix(rm=f"{row['rm_score']:.2f}", kl=f"{row['kl']:.2f}", gold=f"{row['gold']:.2f}")
        if on_step is not None:
            on_step(row)
        _check_kl(row, cfg)
        # ... and, every few batches, evaluation of the EMA policy and a checkpoint
        if evaluate is not None and _due(step + 1, cfg.eval_every, cfg.steps):
            st.history["eval"].append({"step": step + 1, **evaluate(st.ema, step + 1)})
        if ckpt is not None and _due(step + 1, cfg.checkpoint_every, cfg.steps):
            _save(st, ckpt, cfg, seed, inputs, step + 1)
    bar.close()
    st.history["ema"] = st.ema
    return st.history


# ---------------------------------------------------------------------------------------------------------------
# Notebook 04 without the prose: the models, one PPO run, the comparison with SFT, the over-optimisation curves


def model_dir(profile: str, run: str = "ppo") -> Path:
    """`artifacts/<profile>/ppo/<run>/model/`: the run's EMA policy, `save_pretrained` with its tokenizer."""
    from rlhf_lib.artifacts import step_dir

    return step_dir(profile, "ppo") / run / "model"


@dataclass
class PPOSetup:
    """What every PPO run of a profile shares (`setup`)."""

    ref: torch.nn.Module
    """The reference policy: the SFT model, frozen. Each run starts from a fresh copy of it; the KL is to it."""
    reward_model: RewardModel
    """The frozen reward model (notebook 03)."""
    tokenizer: PreTrainedTokenizerBase
    world: Any
    """The world that the gold utility judges answers in (analysis only)."""
    prompts: list
    """PPO's training prompts (`ppo_train`, without `ppo.heldout_category`)."""
    eval_records: list
    """The evaluation prompts (`ppo_valid`, the first `ppo.n_eval_prompts`)."""
    ptx_ids: torch.Tensor | None = None
    """The pretraining corpus as one token stream, encoded when a PPO-ptx run first needs it (`pretraining_ids`)."""
    sft_eval: dict = field(default_factory=dict)
    """The reference's measurements on the evaluation prompts, {(max_new_tokens, temperature): measurements}:
    every run's step 0, measured once."""
    reward_model_dir: Path | None = None
    """Where `reward_model` is saved: each run's value model starts from a fresh copy of it. None: notebook 03's
    reward model (`reward_model.model_dir`); notebook 07's second round points it at the retrained one."""


def setup(cfg: Any) -> PPOSetup:
    """What every PPO run of a profile shares: SFT reference, reward model, world, prompts."""
    from rlhf_lib.base_model import world_for
    from rlhf_lib.dataset import ensure_data, load_dataset
    from rlhf_lib.reward_model import load_rm
    from rlhf_lib.sft import load_sft
    from rlhf_lib.tasks import CATEGORIES

    if cfg.ppo.heldout_category not in (None, *CATEGORIES):
        raise ValueError(f"ppo.heldout_category={cfg.ppo.heldout_category!r} is not a prompt category; use None or "
                         f"one of {', '.join(CATEGORIES)}.")
    ensure_data(cfg)
    ref, tokenizer = load_sft(cfg)
    return PPOSetup(ref=ref.requires_grad_(False), reward_model=load_rm(cfg).requires_grad_(False),
                    tokenizer=tokenizer, world=world_for(cfg.world),
                    prompts=[r for r in load_dataset(cfg.name, "ppo_train") if r.category != cfg.ppo.heldout_category],
                    eval_records=load_dataset(cfg.name, "ppo_valid")[: cfg.ppo.n_eval_prompts])


def pretraining_ids(cfg: Any, s: PPOSetup) -> torch.Tensor:
    """The training corpus as one token stream (D_pretrain of PPO-ptx), encoded once per `setup` when first needed."""
    from rlhf_lib.base_model import corpus_ids

    if s.ptx_ids is None:
        s.ptx_ids = corpus_ids(cfg.world, s.tokenizer, "train")
    return s.ptx_ids


def new_policy_and_value(cfg: Any, s: PPOSetup, ppo_cfg: PPOConfig) -> tuple[torch.nn.Module, RewardModel]:
    """The policy starts as SFT (optionally with LoRA adapters), the value model as the reward model."""
    from rlhf_lib.base_model import resolve_device
    from rlhf_lib.reward_model import model_dir as rm_dir
    from rlhf_lib.sft import load_sft, with_lora

    policy = load_sft(cfg)[0]
    if ppo_cfg.lora:
        policy = with_lora(policy, ppo_cfg.lora_r, ppo_cfg.lora_alpha, cfg.seed)
    return policy, RewardModel.load(s.reward_model_dir or rm_dir(cfg.name), resolve_device(cfg.device))


def gold_scorer(world: Any) -> Any:
    """gold(records, texts): the simulated labelers' gold utility of each sample (analysis only)."""
    from rlhf_lib.evaluation import score_samples

    return lambda records, texts: [r["gold"] for r in score_samples(world, records, texts)]


def measure_on_eval_prompts(cfg: Any, s: PPOSetup, ppo_cfg: PPOConfig, model: torch.nn.Module
                            ) -> dict[str, float]:
    """A point of the training curves: RM score, gold utility and KL to SFT of `model`'s samples on the evaluation
    prompts, at the rollout temperature (means and 95% half-widths)."""
    from rlhf_lib.policy_eval import sample_and_measure, summarize_policy

    return summarize_policy(sample_and_measure(model, s.ref, s.reward_model, s.tokenizer, s.world,
                                               s.eval_records, ppo_cfg.max_new_tokens, ppo_cfg.temperature,
                                               cfg.seed + 7))


def run_ppo(cfg: Any, s: PPOSetup, run: str = "ppo", progress: bool = True, on_step: Any = None,
            **changes: Any) -> dict[str, Any]:
    """One PPO run with `cfg.ppo` plus `changes` (e.g. beta=0.1, ptx_coef=1.0); saves the EMA policy.

    Returns the history; `history["ema"]` is the EMA policy (the one evaluated), `history["eval"]` the curves.
    A run that finished before (same settings, same models) is loaded from its checkpoint, not trained again.
    """
    from rlhf_lib.artifacts import step_dir
    from rlhf_lib.base_model import save_base

    ppo_cfg = dataclasses.replace(cfg.ppo, **changes)
    policy, value_model = new_policy_and_value(cfg, s, ppo_cfg)
    ref = None if ppo_cfg.lora else s.ref

    def evaluate(model: torch.nn.Module, step: int) -> dict[str, float]:
        key = (ppo_cfg.max_new_tokens, ppo_cfg.temperature)  # step 0 is SFT itself: once per setup
        if step == 0 and key in s.sft_eval:
            return s.sft_eval[key]
        m = measure_on_eval_prompts(cfg, s, ppo_cfg, model)
        if step == 0:
            s.sft_eval[key] = m
        return m

    out_dir = step_dir(cfg.name, "ppo") / run
    history = train_ppo(policy, ref, value_model, s.reward_model, s.tokenizer, s.prompts, ppo_cfg,
                        cfg.seed, out_dir, pretraining_ids(cfg, s) if ppo_cfg.ptx_coef > 0 else None, evaluate,
                        gold_scorer(s.world), progress, cfg.speed, on_step)
    ema = history["ema"]
    if ppo_cfg.lora:
        ema = ema.merge_and_unload()
        history["ema"] = ema
    save_base(ema, s.tokenizer, model_dir(cfg.name, run))
    return history


def _run_in_child(ticks: Any, cfg: Any, run: str, changes: PPOSetup) -> None:
    """One run of `run_ppo_runs` in its own process: it builds its own setup and reports each rollout batch."""
    new: list[dict] = []
    history = run_ppo(cfg, setup(cfg), run, progress=False, on_step=lambda row: (new.append(row), ticks.put(1)),
                      **changes)
    ticks.put(len(history["step"]) - len(new))  # a resumed run's earlier batches, so that the bar ends full


def run_ppo_runs(cfg: Any, s: PPOSetup, runs: dict[str, dict[str, Any]], progress: bool = True
                 ) -> dict[str, dict[str, Any]]:
    """Independent PPO runs, {name: changes to cfg.ppo}; returns {name: history} as `run_ppo` gives them.

    On a CPU they train `cfg.speed.side_by_side` at a time in child processes (`rlhf_lib.speed.side_by_side`); each
    child checkpoints its run when it finishes, and `run_ppo` here then loads that run instead of training it.
    """
    from rlhf_lib.base_model import resolve_device
    from rlhf_lib.speed import side_by_side

    workers = min(cfg.speed.side_by_side, len(runs))
    if workers > 1 and resolve_device(cfg.device).type == "cpu":
        side_by_side(_run_in_child, {name: (cfg, name, changes) for name, changes in runs.items()}, workers,
                     sum(changes.get("steps", cfg.ppo.steps) for changes in runs.values()),
                     f"PPO runs {', '.join(runs)} ({workers} at once)", progress)
    return {name: run_ppo(cfg, s, name, progress, **changes) for name, changes in runs.items()}


def compare_with_sft(cfg: Any, s: PPOSetup, policies: dict[str, torch.nn.Module]) -> dict[str, dict]:
    """Sample every policy on the evaluation prompts at the SFT evaluation temperature; RM score, gold, KL."""
    from rlhf_lib.policy_eval import sample_and_measure

    return {name: sample_and_measure(p, s.ref, s.reward_model, s.tokenizer, s.world, s.eval_records,
                                     cfg.ppo.max_new_tokens, cfg.sft.temperature, cfg.seed + 11)
            for name, p in policies.items()}


def best_of_n_curve(cfg: Any, s: PPOSetup) -> list[dict[str, float]]:
    """Best-of-n from SFT on the evaluation prompts, n = 1, 2, 4, ... `ppo.best_of_n` (`policy_eval.best_of_n`):
    the reference that PPO's (KL, RM, gold) is compared with."""
    from rlhf_lib.policy_eval import best_of_n

    return best_of_n(s.ref, s.reward_model, s.tokenizer, s.world, s.eval_records, cfg.ppo.best_of_n,
                     cfg.ppo.max_new_tokens, cfg.ppo.temperature, cfg.seed + 7)


def ppo_metrics(measured: dict[str, dict], histories: dict[str, dict], oracle: dict[str, float],
                best_of_n: list[dict[str, float]]) -> dict[str, Any]:
    """`ppo/metrics.json`: gold utility and RM score of SFT and PPO with 95% CIs, each writer's slip in their samples
    and in the oracle's answers on the same prompts (`oracle`, from `evaluation.score_oracle`), the final KL, run
    times, and best-of-n's curve (`best_of_n_curve`)."""
    from rlhf_lib.evaluation import SLIP_KEYS, mean_ci

    out: dict[str, Any] = {"gold_oracle": oracle["gold"],
                           "slip_rates_oracle": {k.removeprefix("slip_"): oracle[k] for k in SLIP_KEYS}}
    for name, m in measured.items():
        for key in ("gold", "rm"):
            out[f"{key}_{name}"], out[f"{key}_{name}_ci"] = mean_ci(m[key])
        out[f"slip_rates_{name}"] = {k.removeprefix("slip_"): mean_ci([r[k] for r in m["rows"]])[0]
                                     for k in SLIP_KEYS}
    main = histories["ppo"]
    diff, diff_ci = mean_ci([p - q for p, q in zip(measured["ppo"]["gold"], measured["sft"]["gold"])])
    out |= {"kl_final": main["eval"][-1]["kl"], "kl_train_final": main["kl"][-1],
            "gold_ppo_minus_sft": diff, "gold_ppo_minus_sft_ci": diff_ci,  # paired over the same prompts
            "ppo_clearly_above_sft": bool(diff - diff_ci > 0),
            "train_seconds": main["seconds"][-1], "episodes": main["episodes"][-1]}
    for name, h in histories.items():
        if name != "ppo":
            out[f"kl_final_{name}"] = h["eval"][-1]["kl"]
            out[f"rm_eval_final_{name}"] = h["eval"][-1]["rm"]
            out[f"gold_eval_final_{name}"] = h["eval"][-1]["gold"]
    out["best_of_n"] = best_of_n
    return out


def build_ppo(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Notebook 04's steps in its order, without the plots: PPO and the small-beta run (each saves its policy), the
    comparison with SFT, the oracle's answers, best-of-n from SFT, `ppo/metrics.json`."""
    from rlhf_lib.artifacts import write_metrics
    from rlhf_lib.evaluation import score_oracle

    s = setup(cfg)
    histories = run_ppo_runs(cfg, s, {"ppo": {}, "small_beta": {"beta": cfg.ppo.small_beta}}, progress)
    measured = compare_with_sft(cfg, s, {"sft": s.ref, "ppo": histories["ppo"]["ema"]})
    oracle_scores = score_oracle(cfg, s.world, s.eval_records)
    bon = best_of_n_curve(cfg, s)
    metrics = ppo_metrics(measured, histories, oracle_scores, bon)
    write_metrics(cfg.name, "ppo", metrics)
    return metrics


def load_ppo(cfg: Any, run: str = "ppo") -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A PPO run's EMA policy; trains notebook 04's models when missing."""
    from rlhf_lib.base_model import load_pretrained

    if not (model_dir(cfg.name, run) / "config.json").exists():
        if run not in ("ppo", "small_beta"):
            raise FileNotFoundError(f"No PPO policy {run!r} at {model_dir(cfg.name, run)}; notebook 05 trains it.")
        print(f"No PPO policy at {model_dir(cfg.name, run)}: training it (this is what notebook 04 does).")
        build_ppo(cfg)
    return load_pretrained(model_dir(cfg.name, run), cfg.device)
