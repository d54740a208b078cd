"""How long the `gpt2` profile takes, stage by stage, measured before anyone rents a GPU.

Each stage's unit of work runs a few times on GPT-2's real shape (124M: 12 layers, 768 wide, a 1,024-token context,
GPT-2's own 50,257-token BPE plus a PAD, rebuilt offline by `rlhf_lib.gpt2_tokenizer`), with random weights, the
`gpt2` profile's batch sizes and lengths, and the project's own code for the step:

| stage | unit timed | how many units the profile runs |
|---|---|---|
| base | one continued-pretraining step, `base.batch_size` x `base.block_size` tokens | `base.max_steps` |
| base_large | the same for GPT-L's shape (gpt2-medium, 355M) | `base.max_steps` |
| sft | one SFT step (`sft_loss`, AdamW), `sft.batch_size` prompt + demonstration | `sft.epochs` x SFT prompts / batch |
| rm_sampling | K completions of `rm.max_new_tokens` for 64 prompts (`sampling.generate`) | RM prompts x mean K / 64 |
| rm | one reward-model step (all C(K,2) pairs of `rm.batch_size` prompts, K = `labelers.k_max`) | RM prompts / batch |
| ppo | one PPO update of `ppo.batch_size` episodes (`train_ppo`: sample, score, GAE, `ppo.ppo_epochs` epochs) | `ppo.steps` per run x 6 runs (notebooks 04, 05, 07) |

and prints, per stage, seconds per unit, peak memory (CUDA max allocated, or the process's peak RSS on a CPU) and the
projected time of the whole stage (units x seconds per unit; sampling for evaluation and the ablations are not
counted). Prompts and demonstrations are the world's own text, cut to `--prompt-tokens` and the stage's response
length. The first unit of each stage is a warm-up and is not timed where `--steps` > 1.

    python benchmarks/gpt2_profile_plan.py                      # every stage but base_large on a CPU (~10 min)
    python benchmarks/gpt2_profile_plan.py --stages base,ppo    # a subset
    python benchmarks/gpt2_profile_plan.py --device cuda        # on a GPU: bf16 autocast, as the profile runs

Writes `benchmarks/results/gpt2-profile-plan-<device>.json`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import math
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from common import RESULTS, hardware, now, peak_memory_mib, reset_memory, versions
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

from rlhf_lib import gpt2_tokenizer
from rlhf_lib.artifacts import write_json_atomic
from rlhf_lib.base_model import corpus_for, lm_loss, resolve_device
from rlhf_lib.config import Profile, get_profile
from rlhf_lib.data import PromptRecord
from rlhf_lib.dataset import target_sizes
from rlhf_lib.losses import rm_loss
from rlhf_lib.ppo_trainer import train_ppo
from rlhf_lib.reward_model import Comparison, RewardModel, encode_comparisons, score_comparisons
from rlhf_lib.sampling import generate
from rlhf_lib.sft import collate, encode_example, sft_loss
from rlhf_lib.speed import autocast
from rlhf_lib.tokenizer import ensure_pad_token
from rlhf_lib.training import adamw, optimizer_step

STAGES = ("base", "base_large", "sft", "rm_sampling", "rm", "ppo")
PPO_RUNS = 6
"""PPO runs of the main job: notebook 04's two (beta, small beta), notebook 05's PPO-ptx, larger beta and one
pretraining-mix sweep point (`ppo.ptx_sweep` has one value), notebook 07's second round."""
SAMPLING_BATCH = 64
"""Prompts per `generate` call (its default batch)."""


def gpt2_shape(tokenizer: PreTrainedTokenizerBase, large: bool = False) -> GPT2LMHeadModel:
    """GPT-2 (124M) or gpt2-medium's shape (355M), random weights, with GPT-2's vocabulary plus the PAD row."""
    shape = dict(n_layer=24, n_embd=1024, n_head=16) if large else dict(n_layer=12, n_embd=768, n_head=12)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **shape)
    return GPT2LMHeadModel(config)


def world_pieces(tokenizer: PreTrainedTokenizerBase, cfg: Profile, n: int, tokens: int, seed: int) -> list[str]:
    """`n` pieces of the world's text, each `tokens` GPT-2 tokens long."""
    ids = tokenizer("\n\n".join(d.text for d in corpus_for(cfg.world).train_documents()[:400]))["input_ids"]
    rng = random.Random(seed)
    starts = [rng.randrange(0, len(ids) - tokens) for _ in range(n)]
    return [tokenizer.decode(ids[s: s + tokens]) for s in starts]


def timed(unit: Callable[[], None], steps: int, device: torch.device) -> dict[str, Any]:
    """Seconds per call of `unit` (the first call untimed when `steps` > 1) and the peak memory of all calls."""
    memory = reset_memory(device)
    timed_calls = max(1, steps - 1)
    if steps > 1:
        unit()  # warm-up
    t0 = now(device)
    for _ in range(timed_calls):
        unit()
    return {"seconds_per_unit": (now(device) - t0) / timed_calls, "timed_units": timed_calls,
            "peak_memory_mib": peak_memory_mib(device), **memory}


def lm_step(model: GPT2LMHeadModel, cfg: Profile, device: torch.device, rows: int) -> Callable[[], None]:
    """One pretraining step of `rows` windows of random tokens (the step's cost does not depend on the text)."""
    b = cfg.base
    optimizer = adamw(model, b.lr, b.weight_decay, speed=cfg.speed)
    vocab = model.config.vocab_size

    def unit() -> None:
        x = torch.randint(0, vocab, (rows, b.block_size + 1), device=device)
        with autocast(device, cfg.speed):
            loss = lm_loss(model, x[:, :-1], x[:, 1:])
        optimizer_step(model, optimizer, loss, b.grad_clip)
    return unit


def sft_step(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase, cfg: Profile, device: torch.device,
             prompts: list[str], answers: list[str]) -> Callable[[], None]:
    s = cfg.sft
    optimizer = adamw(model, s.lr, s.weight_decay, speed=cfg.speed)
    examples = [encode_example(tokenizer, p, a, s.max_len) for p, a in zip(prompts, answers)][: s.batch_size]
    batch = {k: v.to(device) for k, v in collate(examples, tokenizer.pad_token_id).items()}

    def unit() -> None:
        with autocast(device, cfg.speed):
            loss = sft_loss(model, batch)
        optimizer_step(model, optimizer, loss, s.grad_clip)
    return unit


def rm_step(rm: RewardModel, tokenizer: PreTrainedTokenizerBase, cfg: Profile, device: torch.device,
            prompts: list[str], answers: list[str]) -> Callable[[], None]:
    r, k = cfg.rm, cfg.labelers.k_max
    optimizer = adamw(rm, r.lr, r.weight_decay, speed=cfg.speed)
    batch = [Comparison(prompts[i], answers[i * k:(i + 1) * k], list(range(k))) for i in range(r.batch_size)]
    enc = {key: v.to(device) for key, v in encode_comparisons(tokenizer, batch, r.max_len).items()}

    def unit() -> None:
        with autocast(device, cfg.speed):
            loss = rm_loss(score_comparisons(rm, enc).float(), enc["ranks"])
        optimizer_step(rm, optimizer, loss, r.grad_clip)
    return unit


def sampling_unit(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase, cfg: Profile,
                  prompts: list[str]) -> Callable[[], None]:
    def unit() -> None:
        with autocast(next(model.parameters()).device, cfg.speed):
            generate(model, tokenizer, prompts[:SAMPLING_BATCH], cfg.rm.max_new_tokens, cfg.rm.temperature,
                     batch_size=SAMPLING_BATCH)
    return unit


def ppo_seconds(policy: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase, cfg: Profile, device: torch.device,
                prompts: list[str], steps: int) -> dict[str, Any]:
    """`train_ppo` for `steps` updates of the profile's PPO settings, four 124M models (policy, reference, value,
    reward). Seconds per update from its own clock, after the first update when there are two or more."""
    records = [PromptRecord(prompt_id=f"p{i}", user_id="u", category="open_qa", kind="plain", prompt=p, task={})
               for i, p in enumerate(prompts)]
    ppo_cfg = dataclasses.replace(cfg.ppo, steps=steps, checkpoint_every=steps + 1, eval_every=steps + 1)
    ref, value = copy.deepcopy(policy).eval(), RewardModel.from_lm(copy.deepcopy(policy)).to(device)
    reward = copy.deepcopy(value)
    memory = reset_memory(device)
    history = train_ppo(policy, ref, value, reward, tokenizer, records, ppo_cfg, seed=0, progress=True,
                        speed=cfg.speed)
    seconds = history["seconds"]
    per = (seconds[-1] - seconds[0]) / (len(seconds) - 1) if len(seconds) > 1 else seconds[-1]
    return {"seconds_per_unit": per, "timed_units": max(1, len(seconds) - 1), "peak_memory_mib": peak_memory_mib(device),
            **memory}


def plan(args: argparse.Namespace) -> dict[str, Any]:
    cfg = get_profile("gpt2")
    cfg.device = str(args.device)
    device = args.device
    folder = gpt2_tokenizer.gpt2_tokenizer_from_tiktoken(gpt2_tokenizer.find_gpt2_tiktoken(),
                                                         Path(tempfile.mkdtemp()) / "gpt2-tokenizer")
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(folder))
    sizes = target_sizes(cfg)
    k_max, mean_k = cfg.labelers.k_max, (cfg.labelers.k_min + cfg.labelers.k_max) / 2
    rm_prompts = min(sizes["rm_train"], cfg.rm.max_prompts or sizes["rm_train"])
    units = {"base": cfg.base.max_steps, "base_large": cfg.base.max_steps,
             "sft": cfg.sft.epochs * math.ceil(sizes["sft_train"] / cfg.sft.batch_size),
             "rm_sampling": math.ceil(rm_prompts * mean_k / SAMPLING_BATCH),
             "rm": cfg.rm.epochs * math.ceil(rm_prompts / cfg.rm.batch_size),
             "ppo": PPO_RUNS * cfg.ppo.steps}
    prompts = world_pieces(tokenizer, cfg, max(cfg.ppo.batch_size, SAMPLING_BATCH, cfg.sft.batch_size),
                           args.prompt_tokens, 0)
    answers = world_pieces(tokenizer, cfg, cfg.rm.batch_size * k_max, cfg.rm.max_new_tokens, 1)
    demos = world_pieces(tokenizer, cfg, cfg.sft.batch_size, cfg.sft.max_new_tokens, 2)
    stages: dict[str, Any] = {}
    for stage in args.stages:
        torch.manual_seed(0)
        rows = args.base_rows or cfg.base.batch_size
        print(f"--- {stage}: {units[stage]} units in the profile", flush=True)
        if stage == "ppo":
            result = ppo_seconds(gpt2_shape(tokenizer).to(device), tokenizer, cfg, device, prompts, args.steps)
        else:
            model = gpt2_shape(tokenizer, large=stage == "base_large").to(device)
            unit = {"base": lambda: lm_step(model, cfg, device, rows),
                    "base_large": lambda: lm_step(model, cfg, device, rows),
                    "sft": lambda: sft_step(model, tokenizer, cfg, device, prompts, demos),
                    "rm_sampling": lambda: sampling_unit(model.eval(), tokenizer, cfg, prompts),
                    "rm": lambda: rm_step(RewardModel.from_lm(model).to(device), tokenizer, cfg, device, prompts,
                                          answers)}[stage]()
            result = timed(unit, args.steps, device)
            if stage.startswith("base") and rows != cfg.base.batch_size:  # a step of the full batch = its windows
                result |= {"measured_windows": rows, "seconds_per_measured_step": result["seconds_per_unit"],
                           "seconds_per_unit": result["seconds_per_unit"] * cfg.base.batch_size / rows}
        result |= {"units": units[stage], "projected_minutes": units[stage] * result["seconds_per_unit"] / 60}
        stages[stage] = result
        print(f"    {result['seconds_per_unit']:.2f} s per unit, peak {result['peak_memory_mib']:.0f} MiB, "
              f"projected {result['projected_minutes']:.1f} min", flush=True)
    return {"stages": stages, "sizes": sizes, "rm_prompts": rm_prompts, "mean_k": mean_k,
            "prompt_tokens": args.prompt_tokens, "ppo_runs": PPO_RUNS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--stages", default=None, help=f"comma-separated subset of {','.join(STAGES)} (default: all; on "
                                                  "a CPU all but base_large, whose step takes minutes there)")
    p.add_argument("--steps", type=int, default=None, help="units per stage, the first one untimed when 2 or more "
                                                           "(default: 3 on CUDA, 1 on a CPU)")
    p.add_argument("--base-rows", type=int, default=None,
                   help="windows per timed pretraining step, the step time then scaled to base.batch_size windows "
                        "(default: base.batch_size; 1 on a CPU, where 8 windows of 1,024 tokens with GPT-2's 50k "
                        "vocabulary need more than 24 GiB: killed for memory on the 2-core machine)")
    p.add_argument("--prompt-tokens", type=int, default=64, help="prompt length in GPT-2 tokens")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    args.device = resolve_device(args.device)
    cuda = args.device.type == "cuda"
    args.steps = args.steps or (3 if cuda else 1)
    args.base_rows = args.base_rows or (None if cuda else 1)
    args.stages = args.stages.split(",") if args.stages else [s for s in STAGES if cuda or s != "base_large"]
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stage(s) {sorted(unknown)}: choose from {', '.join(STAGES)}")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    result = plan(args)
    print(f"\nThe gpt2 profile on {args.device.type} ({hardware(args.device).get('gpu') or hardware(args.device)['cpu']})")
    print(f"{'stage':12s} {'s/unit':>9s} {'units':>7s} {'projected':>11s} {'peak MiB':>9s}")
    for name, r in result["stages"].items():
        print(f"{name:12s} {r['seconds_per_unit']:9.2f} {r['units']:7d} {r['projected_minutes']:9.1f} m "
              f"{r['peak_memory_mib']:9.0f}")
    total = sum(r["projected_minutes"] for r in result["stages"].values())
    print(f"{'total':12s} {'':9s} {'':7s} {total:9.1f} m   (the stages measured; evaluation sampling not counted)")
    record = {"benchmark": "gpt2-profile-plan", "device": args.device.type, **result,
              "projected_minutes_total": total, "command": shlex.join([sys.executable, *sys.argv]),
              "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hardware": hardware(args.device), "versions": versions()}
    path = args.out or RESULTS / f"gpt2-profile-plan-{args.device.type}.json"
    write_json_atomic(path, record)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
