"""Rollout throughput: our `rlhf_lib.rollout.sample_rollout` vs TRL's PPO generation path, in new tokens per second.

Both sample one response per prompt from the same GPT-2 with the KV cache: softmax(logits / temperature), top-k and
top-p off. The prompts (corpus text of varied length) are the same, left-padded the same way (TRL's `batch_generation`
receives the ids our `sampling.encode_prompts` makes, which is what `sample_rollout` does inside); the batch is
generated in one piece by both. So that both generate exactly `--new-tokens` tokens per response, EOS and PAD are
suppressed in both (`suppress_tokens`), and the number of real generated tokens is checked. Throughput = generated
tokens of the timed batches / seconds, after `--warmup` untimed batches. Peak memory: CUDA max allocated, or the
process's peak RSS on CPU.

    python benchmarks/bench_rollout.py --tiny        # 2-layer GPT-2 on the CPU, about a minute
    python benchmarks/bench_rollout.py               # GPT-2 124M, on CUDA when available (bf16 autocast, TF32)
"""

from __future__ import annotations

import copy

import torch
from common import (args_dict, autocast, finish_args, gpt2_config, model_summary, now, parser, report,
                    run_in_turns, system_figures, token_windows, tokenizer_and_ids)
from transformers import GenerationConfig, GPT2LMHeadModel
from trl.experimental.ppo.ppo_trainer import batch_generation  # the generation PPOTrainer.train calls

from rlhf_lib.rollout import sample_rollout
from rlhf_lib.sampling import encode_prompts


def run_ours(policy, tokenizer, prompt_batches, args):
    """Returns (seconds, generated tokens) of the timed batches."""
    policy.generation_config.suppress_tokens = [tokenizer.eos_token_id, tokenizer.pad_token_id]  # fixed length
    seconds, tokens = 0.0, 0
    for i, prompts in enumerate(prompt_batches):
        torch.manual_seed(args.seed + i)
        t0 = now(args.device)
        with autocast(args.device):
            rollout = sample_rollout(policy, tokenizer, prompts, args.new_tokens, args.temperature,
                                     static_cache=torch.device(args.device).type == "cuda")  # as train_ppo does
        t1 = now(args.device)
        n = int(rollout.mask.sum())
        assert n == len(prompts) * args.new_tokens, f"ours generated {n} tokens"
        if i >= args.warmup:
            seconds, tokens = seconds + t1 - t0, tokens + n
    return seconds, tokens


def run_trl(policy, tokenizer, prompt_batches, args):
    """`batch_generation` as PPOTrainer calls it, with the whole batch at once. Returns (seconds, generated tokens)."""
    policy.eval()
    generation_config = GenerationConfig(
        max_new_tokens=args.new_tokens, temperature=args.temperature + 1e-7, top_k=0, top_p=1.0, do_sample=True,
        suppress_tokens=[tokenizer.eos_token_id, tokenizer.pad_token_id])  # PPOTrainer's settings + fixed length
    limit = policy.config.n_positions - args.new_tokens  # as sample_rollout truncates prompts
    seconds, tokens = 0.0, 0
    for i, prompts in enumerate(prompt_batches):
        queries = encode_prompts(tokenizer, prompts, limit)["input_ids"].to(args.device)  # PAD on the left
        torch.manual_seed(args.seed + i)
        t0 = now(args.device)
        with autocast(args.device):
            query_responses, _ = batch_generation(policy, queries, len(prompts), tokenizer.pad_token_id,
                                                  generation_config)
        t1 = now(args.device)
        responses = query_responses[:, queries.shape[1]:]
        n = int(((responses != tokenizer.eos_token_id) & (responses != tokenizer.pad_token_id)).sum())
        assert n == len(prompts) * args.new_tokens, f"TRL generated {n} tokens"
        if i >= args.warmup:
            seconds, tokens = seconds + t1 - t0, tokens + n
    return seconds, tokens


def main():
    p = parser(__doc__)
    p.add_argument("--new-tokens", type=int, default=None, help="tokens generated per response")
    p.add_argument("--min-prompt", type=int, default=None, help="shortest prompt in tokens")
    p.add_argument("--max-prompt", type=int, default=None, help="longest prompt in tokens")
    p.add_argument("--temperature", type=float, default=1.0)
    args = finish_args(p.parse_args(), tiny=dict(batch_size=16, steps=30, warmup=2, new_tokens=32, min_prompt=16,
                                                 max_prompt=64),
                       full=dict(batch_size=64, steps=10, warmup=2, new_tokens=128, min_prompt=32, max_prompt=256))
    tokenizer, ids = tokenizer_and_ids(args.tiny)
    torch.manual_seed(args.seed)
    initial = GPT2LMHeadModel(gpt2_config(tokenizer, args.tiny)).eval()
    gen = torch.Generator().manual_seed(args.seed)
    lengths = torch.randint(args.min_prompt, args.max_prompt + 1, (args.warmup + args.steps, args.batch_size),
                            generator=gen)
    prompt_batches = [token_windows(ids, row.tolist(), tokenizer, gen) for row in lengths]

    def run(system):
        policy = copy.deepcopy(initial).to(args.device)
        return (run_ours if system == "ours" else run_trl)(policy, tokenizer, prompt_batches, args)[0], {}

    tokens = args.steps * args.batch_size * args.new_tokens  # what each turn generates (checked in the runs)
    results = {system: system_figures(turns, ("tokens", tokens), ("batches", args.steps))
               for system, turns in run_in_turns(run, args.device, args.turns).items()}

    notes = [
        "Same weights, prompts, left padding, batch size, temperature (top-k 0, top-p 1) and number of new tokens; "
        "EOS and PAD suppressed in both so every response has exactly new_tokens tokens (checked); each batch is "
        "generated in one call by both; the same torch seed before each batch; the systems take turns (--turns).",
        "Ours: rlhf_lib.rollout.sample_rollout, which also tokenises the prompt strings, builds the response mask and "
        "decodes the responses (inside the timing). TRL: trl.experimental.ppo.ppo_trainer.batch_generation with "
        "local_rollout_forward_batch_size = batch size, on pre-tokenised prompts (PPOTrainer tokenises its dataset "
        "beforehand); it also returns the logits of every step (output_scores), which PPOTrainer uses.",
        "Ours passes EOS suppression through policy.generation_config (sample_rollout takes no generation options); "
        "ours also sets min_new_tokens=1 as always.",
        "CUDA: both inside torch.autocast(bf16) with TF32 on; CPU: both fp32.",
        "Memory on CPU is the peak RSS of the whole process (Python, libraries, data), reset before each system.",
    ]
    config = args_dict(args) | {"model": model_summary(initial),
                                "prompt_tokens_mean": float(lengths[args.warmup:].float().mean())}
    report("rollout", "new tokens/s", args, config, results["ours"], results["trl"], notes)


if __name__ == "__main__":
    main()
