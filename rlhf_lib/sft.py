"""Supervised fine-tuning on labeler demonstrations (notebook 02; the paper's Section 3.5, "SFT").

The loss is next-token cross-entropy on the *response* tokens only: the prompt is context, not something the model
should learn to write. Each example is `prompt + demonstration + EOS`; the labels are -100 on the prompt and on
padding (PyTorch's ignore index), so

    L_SFT = - 1/|y| * sum_t log pi(y_t | x, y_<t)        over the response tokens y of each batch.

The paper trains 16 epochs with a cosine schedule and picks the final model by reward-model score on validation, not
by validation loss, because the loss starts to rise after one epoch while more epochs still help.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from rlhf_lib.config import SFTConfig, SpeedConfig
from rlhf_lib.data import SFTRecord
from rlhf_lib.evaluation import SLIP_KEYS, score_oracle
from rlhf_lib.speed import autocast
from rlhf_lib.training import (adamw, cosine_lr, fingerprint, load_checkpoint, my_rows, optimizer_step, read_losses,
                               save_checkpoint, set_lr)

IGNORE = -100
"""Label of tokens that do not count in the loss (PyTorch's cross-entropy ignore_index)."""


def encode_example(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str, max_len: int
                   ) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of `prompt + response + EOS`; labels are IGNORE on the prompt.

    Too long: the prompt loses tokens from its left end (its request is at the right); the response is kept.
    """
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"][: max_len - 1] + [tokenizer.eos_token_id]
    p = p[max(0, len(p) + len(r) - max_len):]
    return p + r, [IGNORE] * len(p) + r


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids with PAD, labels with IGNORE, attention_mask 0 on padding. Shapes (B, T)."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(examples):
        input_ids[i, : len(ids)], labels[i, : len(lab)], attention_mask[i, : len(ids)] = \
            torch.tensor(ids), torch.tensor(lab), 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def sft_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the response tokens: position t predicts token t+1.

    Only the positions that predict a response token go through the unembedding: prompt and padding positions
    have no target, and at GPT-2's 50k vocabulary their logits would be most of the step's memory."""
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    hidden = model.transformer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]  # (B, T, d)
    logits = model.lm_head(hidden[:, :-1][keep])  # (n response tokens, V)
    return F.cross_entropy(logits, targets[keep])


def batches(examples: list[tuple[list[int], list[int]]], batch_size: int, pad_id: int, rng: random.Random | None
            ) -> list[dict[str, torch.Tensor]]:
    """Batches of similar length (less padding, 2-3x faster here), in random order when `rng` is given."""
    order = list(range(len(examples)))
    if rng is not None:
        rng.shuffle(order)
    chunk = 32 * batch_size  # sort by length within chunks of the shuffled order: random yet similar lengths
    order = [i for s in range(0, len(order), chunk)
             for i in sorted(order[s: s + chunk], key=lambda i: len(examples[i][0]))]
    out = [collate([examples[i] for i in order[s: s + batch_size]], pad_id) for s in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(out)
    return out


@torch.no_grad()
def eval_loss(model: torch.nn.Module, examples: list[tuple[list[int], list[int]]], batch_size: int, pad_id: int
              ) -> float:
    """Token-weighted validation loss over all examples."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for b in batches(examples, batch_size, pad_id, None):
        b = {k: v.to(device) for k, v in b.items()}
        n = int((b["labels"][:, 1:] != IGNORE).sum())
        total += sft_loss(model, b).item() * n
        count += n
    model.train()
    return total / max(count, 1)


def with_lora(model: torch.nn.Module, r: int, alpha: int, seed: int = 0) -> torch.nn.Module:
    """Wrap GPT-2 with LoRA adapters on attention and MLP projections (peft); only the adapters train.

    The adapters' random start comes from `seed` alone, so a killed run finds its checkpoint again."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=["c_attn", "c_proj", "c_fc"], lora_dropout=0.0,
                        fan_in_fan_out=True, task_type="CAUSAL_LM")  # GPT-2's Conv1D stores weights transposed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def train_sft(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, train: list[SFTRecord],
              valid: list[SFTRecord], cfg: SFTConfig, out_dir: Path, seed: int,
              on_epoch_end: Any = None, progress: bool = True, speed: SpeedConfig = SpeedConfig()
              ) -> dict[str, Any]:
    """Fine-tune in place for `cfg.epochs`; returns the history. Resumes from `out_dir/checkpoint.pt` after a kill.

    `on_epoch_end(epoch, model)` may return a dict of extra metrics for that epoch (e.g. gold utility of samples).
    """
    device = next(model.parameters()).device
    max_len = min(cfg.max_len, model.config.n_positions)
    enc = lambda recs: [encode_example(tokenizer, r.prompt, r.demonstration, max_len) for r in recs]  # noqa: E731
    train_ex, valid_ex = enc(train), enc(valid)
    steps_per_epoch = math.ceil(len(train_ex) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    optimizer = adamw(model, cfg.lr, cfg.weight_decay, speed=speed)
    history: dict[str, Any] = {"step": [], "train_loss": [], "epoch": [0], "valid_loss": [],
                               "epoch_metrics": [], "train_seconds": 0.0}
    start_epoch, step = 0, 0
    ckpt_path = Path(out_dir) / "checkpoint.pt"
    inputs = fingerprint(model, train_ex, valid_ex, seed)  # a kill's checkpoint, from this very base model and data
    ckpt = load_checkpoint(ckpt_path, device, config=vars(cfg), inputs=inputs)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        history, start_epoch, step = ckpt["history"], ckpt["epoch"], ckpt["step"]
        print(f"Resuming SFT from {ckpt_path} after epoch {start_epoch}/{cfg.epochs}.")
    else:
        history["valid_loss"].append(eval_loss(model, valid_ex, cfg.batch_size, tokenizer.pad_token_id))
        if on_epoch_end is not None:
            history["epoch_metrics"].append(on_epoch_end(0, model) or {})
    t0 = time.time() - history["train_seconds"]
    model.train()
    bar = tqdm(total=total, initial=step, desc="SFT", disable=not progress)
    for epoch in range(start_epoch, cfg.epochs):
        losses = []  # kept on the device and read once per epoch: reading a loss each step would wait for the GPU
        for batch in batches(train_ex, cfg.batch_size, tokenizer.pad_token_id, random.Random(seed * 1000 + epoch)):
            set_lr(optimizer, cosine_lr(step, total, cfg.warmup_steps, cfg.lr, cfg.min_lr))
            with autocast(device, speed):
                loss = sft_loss(model, {k: v[my_rows(len(v))].to(device) for k, v in batch.items()})
            optimizer_step(model, optimizer, loss, cfg.grad_clip)
            losses.append(loss.detach())
            step += 1
            history["step"].append(step)
            bar.update(1)
        history["train_loss"] += read_losses(losses, f"SFT loss in epoch {epoch + 1}",
                                             f"lower sft.lr (now {cfg.lr}).")
        history["epoch"].append(epoch + 1)
        history["valid_loss"].append(eval_loss(model, valid_ex, cfg.batch_size, tokenizer.pad_token_id))
        if on_epoch_end is not None:
            history["epoch_metrics"].append(on_epoch_end(epoch + 1, model) or {})
        bar.set_postfix(epoch=epoch + 1, valid=f"{history['valid_loss'][-1]:.3f}")
        history["train_seconds"] = time.time() - t0
        if epoch + 1 < cfg.epochs:
            save_checkpoint(ckpt_path, model=model.state_dict(), optimizer=optimizer.state_dict(), epoch=epoch + 1,
                            step=step, history=history, config=vars(cfg), inputs=inputs)
    bar.close()
    ckpt_path.unlink(missing_ok=True)
    return history


# ---------------------------------------------------------------------------------------------------------------
# Notebook 02 without the prose


def model_dir(profile: str) -> Path:
    from rlhf_lib.artifacts import step_dir

    return step_dir(profile, "sft") / "model"


def sample_and_score(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, world: Any, records: list,
                     cfg: SFTConfig, seed: int, prefix: str = "") -> tuple[list[str], dict[str, float]]:
    """Sample each record's prompt (after an optional few-shot `prefix`), score the samples on the checker axes."""
    from rlhf_lib.evaluation import score_samples, summarize
    from rlhf_lib.sampling import generate

    texts = generate(model, tokenizer, [prefix + r.prompt for r in records], cfg.max_new_tokens,
                     temperature=cfg.temperature, seed=seed)
    return texts, summarize(score_samples(world, records, texts))


def build_sft(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Notebook 02's steps in its order: score the base model (plain and few-shot prompted), fine-tune on the
    demonstrations, score the oracle answers, save the model, write `sft/metrics.json`."""
    from rlhf_lib.artifacts import step_dir
    from rlhf_lib.base_model import load_base, world_for
    from rlhf_lib.dataset import ensure_data, load_dataset
    from rlhf_lib.evaluation import few_shot_prefix, score_oracle

    ensure_data(cfg)
    model, tokenizer = load_base(cfg)
    world = world_for(cfg.world)
    train, valid = load_dataset(cfg.name, "sft_train"), load_dataset(cfg.name, "sft_valid")
    evals = load_dataset(cfg.name, "ppo_valid")[: cfg.sft.n_eval_prompts]
    base_scores = sample_and_score(model, tokenizer, world, evals, cfg.sft, cfg.seed)[1]
    prefix = few_shot_prefix([(r.prompt, r.demonstration) for r in train])
    prompted_scores = sample_and_score(model, tokenizer, world, evals, cfg.sft, cfg.seed, prefix)[1]
    if cfg.sft.lora:
        model = with_lora(model, cfg.sft.lora_r, cfg.sft.lora_alpha, cfg.seed)
    history = train_sft(model, tokenizer, train, valid, cfg.sft, step_dir(cfg.name, "sft"), cfg.seed,
                        on_epoch_end=lambda e, m: sample_and_score(m, tokenizer, world, evals, cfg.sft, cfg.seed)[1],
                        progress=progress, speed=cfg.speed)
    if cfg.sft.lora:
        model = model.merge_and_unload()
    oracle_scores = score_oracle(cfg, world, evals)
    metrics = sft_metrics(base_scores, prompted_scores, history, oracle_scores)
    return save_sft(cfg, model, tokenizer, metrics)


def save_sft(cfg: Any, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, metrics: dict[str, Any]
             ) -> dict[str, Any]:
    """Save the SFT model to `model_dir` and its metrics to `sft/metrics.json`; returns the metrics."""
    from rlhf_lib.artifacts import write_metrics
    from rlhf_lib.base_model import save_base

    save_base(model, tokenizer, model_dir(cfg.name))
    write_metrics(cfg.name, "sft", metrics)
    return metrics


def sft_metrics(base: dict[str, float], prompted: dict[str, float], history: dict[str, Any],
                oracle: dict[str, float]) -> dict[str, Any]:
    """`sft/metrics.json`: gold utility, axes and writers' slips of base, few-shot-prompted base and SFT samples, and
    of the oracle answers on the same prompts (the ceiling); loss per epoch."""
    final = history["epoch_metrics"][-1]
    out: dict[str, Any] = {"gold_base": base["gold"], "gold_prompted": prompted["gold"], "gold_sft": final["gold"],
                           "gold_base_ci": base["gold_ci"], "gold_prompted_ci": prompted["gold_ci"],
                           "gold_sft_ci": final["gold_ci"], "valid_loss_per_epoch": history["valid_loss"],
                           "gold_per_epoch": [m["gold"] for m in history["epoch_metrics"]],
                           "best_valid_loss_epoch": int(min(range(len(history["valid_loss"])),
                                                            key=history["valid_loss"].__getitem__)),
                           "best_gold_epoch": int(max(range(len(history["epoch_metrics"])),
                                                      key=lambda i: history["epoch_metrics"][i]["gold"])),
                           "train_seconds": history["train_seconds"]}
    out["gold_oracle"] = oracle["gold"]
    for name, scores in (("base", base), ("prompted", prompted), ("sft", final), ("oracle", oracle)):
        for axis in ("attempts", "follows_constraints", "hallucinates", "appropriate", "correct"):
            out[f"{axis}_{name}"] = scores[axis]
        out[f"slip_rates_{name}"] = {k.removeprefix("slip_"): scores[k] for k in SLIP_KEYS}
    return out


def load_sft(cfg: Any) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The profile's SFT model and tokenizer; trains them (notebook 02's work) when missing."""
    from rlhf_lib.base_model import load_pretrained

    if not (model_dir(cfg.name) / "config.json").exists():
        print(f"No SFT model at {model_dir(cfg.name)}: training it (this is what notebook 02 does).")
        build_sft(cfg)
    return load_pretrained(model_dir(cfg.name), cfg.device)
