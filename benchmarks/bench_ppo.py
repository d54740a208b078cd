"""PPO throughput end to end: our `rlhf_lib.ppo_trainer.train_ppo` vs TRL's `PPOTrainer`, in episodes per second.

One PPO update = sample a response of up to 24 tokens for each of `--batch-size` prompts of 64 tokens, score the
episodes (policy and reference log-probs, values, the reward model's score), per-token KL rewards, GAE, then 4 PPO
epochs of minibatch updates of the policy and the value model. Four models of the same GPT-2 architecture, the same
initial weights in both systems: the policy and its frozen reference copy, a reward model and a value model (a copy
of the reward model: a GPT-2 transformer and a linear head; ours is `RewardModel`, TRL's
`GPT2ForSequenceClassification`). Same prompts, batch size, minibatch size, epochs, response length, KL
coefficient, temperature, clip ranges, GAE parameters and missing-EOS penalty. Both run `--warmup + --steps` updates;
throughput = episodes of the last `--steps` updates / their seconds. Peak memory: CUDA max allocated, or the
process's peak RSS on CPU.

    python benchmarks/bench_ppo.py --tiny            # 2-layer GPT-2 on the CPU, about a minute
    python benchmarks/bench_ppo.py                   # GPT-2 124M, on CUDA when available (bf16 autocast, TF32)
"""

from __future__ import annotations

import copy
import tempfile

import torch
from common import (StepTimes, args_dict, autocast, finish_args, gpt2_config, model_summary, parser,
                    report, run_in_turns, system_figures, token_windows, tokenizer_and_ids)
from datasets import Dataset
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel, PrinterCallback, ProgressCallback
from trl.experimental.ppo import PPOConfig as TRLPPOConfig  # imported before any memory is measured
from trl.experimental.ppo import PPOTrainer

from rlhf_lib.config import PPOConfig
from rlhf_lib.data import PromptRecord
from rlhf_lib.ppo_trainer import train_ppo
from rlhf_lib.reward_model import RewardModel

PROMPT_TOKENS, RESPONSE_TOKENS, PPO_EPOCHS = 64, 24, 4
MISSING_EOS_PENALTY, CLIP, GAMMA, LAM = 1.0, 0.2, 1.0, 0.95


def as_reward_model(scorer: GPT2ForSequenceClassification) -> RewardModel:
    """Our RewardModel with the weights of a GPT2ForSequenceClassification (its head has a bias; we set it to 0)."""
    rm = RewardModel(copy.deepcopy(scorer.transformer))
    with torch.no_grad():
        rm.head.weight.copy_(scorer.score.weight)
        rm.head.bias.zero_()
    return rm


def run_ours(policy, scorer, tokenizer, prompts, args):
    """train_ppo without evaluation, gold scores or checkpoints. Returns seconds of the timed updates, details."""
    records = [PromptRecord(prompt_id=f"p{i}", user_id="u", category="open_qa", kind="plain", prompt=p, task={})
               for i, p in enumerate(prompts)]
    cfg = PPOConfig(steps=args.warmup + args.steps, batch_size=args.batch_size, minibatch_size=args.minibatch_size,
                    ppo_epochs=PPO_EPOCHS, lr=args.lr, value_lr=args.lr, beta=args.kl_coef,
                    temperature=args.temperature, max_new_tokens=RESPONSE_TOKENS,
                    missing_eos_penalty=MISSING_EOS_PENALTY, clip=CLIP, value_clip=CLIP, discount=GAMMA,
                    gae_lambda=LAM, whiten_advantages=True)
    device = args.device
    ref, value, reward = copy.deepcopy(policy), as_reward_model(scorer), as_reward_model(scorer)
    with autocast(device):
        history = train_ppo(policy.to(device), ref.to(device), value.to(device), reward.to(device), tokenizer,
                            records, cfg, seed=args.seed, out_dir=None, evaluate=None, gold=None, progress=False)
    seconds = history["seconds"]  # since the start, at the end of each update (after a device sync: float(...))
    return seconds[-1] - seconds[args.warmup - 1], {"optim": "torch.optim.Adam x2 (policy, value)",
                                                    "ended_with_eos": sum(history["ended"]) / len(history["ended"])}


def run_trl(policy, scorer, tokenizer, prompt_ids, args):
    """PPOTrainer.train on the same prompt ids. Returns seconds of the timed updates, details."""
    cuda = args.device.type == "cuda"
    config = TRLPPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench_ppo_"),
        per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
        num_mini_batches=args.batch_size // args.minibatch_size,  # one optimiser step per minibatch, as ours
        local_rollout_forward_batch_size=args.batch_size,  # generate the whole batch at once, as ours
        total_episodes=args.batch_size * (args.warmup + args.steps), num_ppo_epochs=PPO_EPOCHS,
        response_length=RESPONSE_TOKENS, stop_token="eos", missing_eos_penalty=MISSING_EOS_PENALTY,
        temperature=args.temperature, kl_coef=args.kl_coef, cliprange=CLIP, cliprange_value=CLIP, gamma=GAMMA,
        lam=LAM, learning_rate=args.lr, lr_scheduler_type="constant", num_sample_generations=0,
        bf16=cuda, use_cpu=not cuda,  # TRL's default bf16=True would run bf16 autocast on the CPU too
        report_to="none", save_strategy="no", eval_strategy="no", disable_tqdm=True, seed=args.seed)
    timer = StepTimes(args.device)
    value_model = copy.deepcopy(scorer)
    trainer = PPOTrainer(args=config, processing_class=tokenizer, model=policy, ref_model=copy.deepcopy(policy),
                         reward_model=scorer, value_model=value_model,
                         train_dataset=Dataset.from_dict({"input_ids": prompt_ids}), callbacks=[timer])
    for cb in (PrinterCallback, ProgressCallback):  # metrics are still computed every update; just not printed
        trainer.remove_callback(cb)
    with autocast(args.device):  # TRL's own bf16 covers only the training forward; this covers generation too
        trainer.train()
    assert len(timer.times) == args.warmup + args.steps
    eos = [log["val/num_eos_tokens"] / args.batch_size for log in timer.logs if "val/num_eos_tokens" in log]
    details = {"optim": getattr(config.optim, "value", str(config.optim)),
               "eos_tokens_per_response": sum(eos) / len(eos)}
    return timer.times[-1] - timer.times[args.warmup - 1], details


def main():
    p = parser(__doc__)
    p.add_argument("--minibatch-size", type=int, default=None, help="episodes per gradient step")
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--kl-coef", type=float, default=0.05)
    p.add_argument("--temperature", type=float, default=1.0)
    args = finish_args(p.parse_args(), tiny=dict(batch_size=16, minibatch_size=4, steps=8, warmup=1),
                       full=dict(batch_size=64, minibatch_size=16, steps=5, warmup=1))
    assert args.warmup >= 1 and args.batch_size % args.minibatch_size == 0
    tokenizer, ids = tokenizer_and_ids(args.tiny)
    config = gpt2_config(tokenizer, args.tiny)
    torch.manual_seed(args.seed)
    policy0 = GPT2LMHeadModel(config)
    scorer_config = copy.deepcopy(config)
    scorer_config.num_labels = 1
    scorer0 = GPT2ForSequenceClassification(scorer_config)  # reward model; the value model starts as its copy
    n = args.batch_size * (args.warmup + args.steps)
    prompts = token_windows(ids, [PROMPT_TOKENS] * n, tokenizer, torch.Generator().manual_seed(args.seed))
    prompt_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in prompts]
    assert all(len(x) == PROMPT_TOKENS for x in prompt_ids)

    def run(system):
        policy, scorer = copy.deepcopy(policy0), copy.deepcopy(scorer0)
        return run_ours(policy, scorer, tokenizer, prompts, args) if system == "ours" else \
            run_trl(policy, scorer, tokenizer, prompt_ids, args)

    results = {system: system_figures(turns, ("episodes", args.batch_size * args.steps), ("updates", args.steps))
               for system, turns in run_in_turns(run, args.device, args.turns).items()}

    notes = [
        "Same initial weights for policy/reference and reward/value, same prompts (64 tokens each, no padding), "
        "batch size, minibatch size (TRL: num_mini_batches = batch / minibatch, gradient_accumulation_steps=1: one "
        "optimiser step per minibatch, as ours), 4 PPO epochs, 24 response tokens, temperature (top-k 0, top-p 1), "
        "KL coefficient (k1 estimator in TRL, log-ratio in ours), clip ranges, gamma, lambda, missing-EOS penalty; "
        "both cut responses after the first EOS and whiten advantages.",
        "Ours: separate Adam optimisers for policy and value (lr = value_lr), gradient-norm clipping at 1, an EMA copy "
        "of the policy updated every gradient step, entropy of the rollout, log-probs through logits_to_keep (the "
        "unembedding on response positions only), minibatches grouped by prompt length; ref/value/score passes in "
        "minibatches. Generation stops when every response has ended (rare with random weights).",
        "TRL: one AdamW over policy + value (loss = policy loss + vf_coef * value loss, one backward), no gradient "
        "clipping, full-sequence logits, hidden states of all layers returned (output_hidden_states=True), the "
        "generation logits kept (output_scores), gc.collect/empty_cache every update, metrics gathered every update "
        "(printing callbacks removed). The rollout is generated and scored in one chunk "
        "(local_rollout_forward_batch_size = batch size).",
        "CUDA: both systems' whole loops run inside torch.autocast(bf16) with TF32 on; TRL also gets bf16=True (its "
        "own autocast covers only its training forward). CPU: both fp32 (TRL's default bf16=True is turned off there).",
        "The reward and value models start from the same GPT2ForSequenceClassification weights; our RewardModel head "
        "has a bias (set to 0) where TRL's score head has none. Random weights: rewards are meaningless, only speed "
        "is measured.",
        "Memory on CPU is the peak RSS of the whole process (Python, libraries, data), reset before each system. Ours "
        "keeps an EMA policy (a fifth model's weights) in memory.",
    ]
    config = args_dict(args) | {"model": model_summary(policy0), "prompt_tokens": PROMPT_TOKENS,
                                "response_tokens": RESPONSE_TOKENS, "ppo_epochs": PPO_EPOCHS,
                                "missing_eos_penalty": MISSING_EOS_PENALTY, "clip": CLIP, "gamma": GAMMA, "lam": LAM}
    report("ppo", "episodes/s", args, config, results["ours"], results["trl"], notes)


if __name__ == "__main__":
    main()
