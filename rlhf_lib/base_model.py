"""The base language model: a GPT-2 pretrained from scratch on the world's corpus, or the real GPT-2 (notebook 00).

The paper starts from GPT-3; we start from a `transformers.GPT2LMHeadModel`. Offline profiles pretrain it here from
random weights (the default profile's finished weights ship in `data/pretrained/`, and `pretrain` loads them when
config, seed and corpus match). The `gpt2` profile loads the hub's GPT-2, which has read the web but never this
world, and continues pretraining it on the world's corpus with the same loop, as GPT-3 had read the web before the
paper began. Every later notebook calls `load_base`, which builds the model when it is missing, so each notebook runs
alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

from rlhf_lib.artifacts import save_atomic, step_dir, write_metrics
from rlhf_lib.config import BaseConfig, Profile, SpeedConfig, WorldConfig
from rlhf_lib.speed import autocast
from rlhf_lib.tokenizer import ensure_pad_token, train_tokenizer
from rlhf_lib.training import (adamw, check_finite, cosine_lr, fingerprint, load_checkpoint, my_rows, optimizer_step,
                               save_checkpoint, set_lr)
from rlhf_lib.corpus import Corpus, build_corpus
from rlhf_lib.hub import from_hub
from rlhf_lib.world import World, build_world


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ---------------------------------------------------------------------------------------------------------------
# 1) The world and its text


@lru_cache(maxsize=4)
def _world(cfg_items: tuple) -> World:
    c = dict(cfg_items)
    return build_world(seed=c["seed"], n_people=c["n_people"], n_places=c["n_places"], n_animals=c["n_animals"],
                       n_objects=c["n_objects"], n_misconceptions=c["n_misconceptions"])


@lru_cache(maxsize=4)
def _corpus(cfg_items: tuple) -> Corpus:
    c = dict(cfg_items)
    return build_corpus(_world(cfg_items), n_chars=c["corpus_chars"], seed=c["seed"],
                        heldout_fraction=c["heldout_fraction"])


def world_for(cfg: WorldConfig) -> World:
    """The world of a profile (deterministic from `cfg.seed`; cached in memory)."""
    return _world(tuple(sorted(asdict(cfg).items())))


def corpus_for(cfg: WorldConfig) -> Corpus:
    """The pretraining corpus of a profile, with its held-out split (D_pretrain for PPO-ptx later)."""
    return _corpus(tuple(sorted(asdict(cfg).items())))


def encode_documents(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> torch.Tensor:
    """All documents as one token stream, each followed by EOS (GPT-2's pretraining format). Shape (N,)."""
    ids: list[int] = []
    for doc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(doc)
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def corpus_ids(cfg: WorldConfig, tokenizer: PreTrainedTokenizerBase, split: str) -> torch.Tensor:
    """The corpus's "train" or "heldout" documents as one token stream (`encode_documents`)."""
    corpus = corpus_for(cfg)
    docs = {"train": corpus.train_documents, "heldout": corpus.heldout_documents}[split]()
    return encode_documents(tokenizer, [d.text for d in docs])


# ---------------------------------------------------------------------------------------------------------------
# 2) The model


def new_model(cfg: BaseConfig, tokenizer: PreTrainedTokenizerBase, seed: int) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 sized by `cfg`, with the tokenizer's special tokens in its config."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=cfg.block_size, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        activation_function="gelu",  # exact GELU is one fused kernel; GPT-2's tanh "gelu_new" is 2x slower on CPU
        resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def starting_model(base_cfg: BaseConfig, tokenizer: PreTrainedTokenizerBase, field: str) -> GPT2LMHeadModel:
    """The weights pretraining starts from: the hub checkpoint `base_cfg.hub_model` (`field` names the profile field
    that set it, for the offline message), else random weights of `base_cfg`'s shape.

    A hub model gets a row for the PAD token the tokenizer adds (the mean of its rows, `ensure_pad_token`)."""
    if not base_cfg.hub_model:
        return new_model(base_cfg, tokenizer, base_cfg.seed)
    model = from_hub(GPT2LMHeadModel.from_pretrained, base_cfg.hub_model, field)
    ensure_pad_token(tokenizer, model)
    return model


def init_model(cfg: Profile, tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    """The model before pretraining: random (offline profiles) or the hub checkpoint (`cfg.base.hub_model`), which
    `pretrain` then continues pretraining on the world's corpus."""
    return starting_model(cfg.base, tokenizer, "base.hub_model").to(resolve_device(cfg.device))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------------------
# 3) Pretraining: next-token cross-entropy on random windows of the corpus, AdamW, warm-up + cosine schedule


def get_batch(ids: torch.Tensor, block_size: int, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows x (B, T) and their next tokens y (B, T)."""
    starts = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=gen)
    x = torch.stack([ids[s: s + block_size] for s in starts])
    y = torch.stack([ids[s + 1: s + 1 + block_size] for s in starts])
    return x, y


def check_context(model: GPT2LMHeadModel, block_size: int) -> None:
    """Pretraining windows must fit the model's context (a hub model brings its own `n_positions`)."""
    if block_size > model.config.n_positions:
        raise ValueError(f"base.block_size={block_size} is longer than the model's context of "
                         f"{model.config.n_positions} tokens: set base.block_size to {model.config.n_positions} or less.")


def lm_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=x).logits  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def heldout_windows(ids: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows covering the held-out stream: (n, T) inputs and targets."""
    n = (len(ids) - 1) // block_size
    if n == 0:
        raise ValueError(f"The held-out text has {len(ids)} tokens, fewer than one window of {block_size} + 1: raise "
                         "world.corpus_chars or world.heldout_fraction, or lower base.block_size.")
    x = ids[: n * block_size].view(n, block_size)
    y = ids[1: n * block_size + 1].view(n, block_size)
    return x, y


EVAL_TOKENS = 8192
"""Tokens per forward pass when measuring perplexity: with GPT-2's 50k vocabulary, 32 windows of 1,024 tokens would
hold 6.6 GB of fp32 logits; 8,192 tokens keep them near 1.6 GB and leave short windows at 32 per pass."""


def eval_batch_size(block_size: int) -> int:
    """Windows per perplexity pass: at most 32, and at most `EVAL_TOKENS` tokens."""
    return max(1, min(32, EVAL_TOKENS // block_size))


@torch.no_grad()
def perplexity(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None,
               max_windows: int | None = None) -> float:
    """exp(mean next-token cross-entropy) over the windows (x, y), `batch_size` windows per pass (default:
    `eval_batch_size` of their length)."""
    batch_size = batch_size or eval_batch_size(x.shape[1])
    model.eval()
    device = next(model.parameters()).device
    x, y = x[:max_windows], y[:max_windows]
    total, count = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i: i + batch_size].to(device), y[i: i + batch_size].to(device)
        total += lm_loss(model, xb, yb).item() * yb.numel()
        count += yb.numel()
    model.train()
    return math.exp(total / count)


def unigram_perplexity(train_ids: torch.Tensor, target_ids: torch.Tensor, vocab_size: int) -> float:
    """Perplexity of the add-one-smoothed unigram model of `train_ids` on `target_ids`: the bar any LM must clear."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1.0
    logp = (counts / counts.sum()).log()
    return math.exp(-logp[target_ids.flatten()].mean().item())


_NOT_TRAINING = ("seed", "shipped_weights", "eval_every", "eval_batches", "checkpoint_every", "n_samples",
                 "sample_tokens")
"""BaseConfig fields that are not part of the key of pretrained weights (the seed is keyed on its own)."""

_REPO = Path(__file__).resolve().parent.parent
SHIPPED_DIR = _REPO / "data" / "pretrained"
"""Pretrained weights that ship with the repository, one folder per training config (`ship_pretrained`)."""


def _config_hash(cfg: BaseConfig, vocab_size: int) -> str:
    training = {k: v for k, v in asdict(cfg).items() if k not in _NOT_TRAINING}
    blob = json.dumps({"base": training, "seed": cfg.seed, "vocab": vocab_size}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def shipped_path(cfg: BaseConfig, vocab_size: int) -> Path:
    """`data/pretrained/<layers>x<width>-<hash of the training config, its seed included>/`."""
    return SHIPPED_DIR / f"{cfg.n_layer}x{cfg.n_embd}-{_config_hash(cfg, vocab_size)}"


def ship_pretrained(model: GPT2LMHeadModel, history: dict[str, Any], cfg: BaseConfig, train_ids: torch.Tensor
                    ) -> Path:
    """Store finished pretraining (fp16 weights, the loss history, what it was trained on) for `pretrain` to reuse.

    fp16 halves the size in git; the weights are used in fp32 again after loading."""
    from safetensors.torch import save_file

    if not history.get("finished"):
        raise ValueError("Only a finished pretraining run can be shipped; run `pretrain` to the end first.")
    weights = {k: v.detach().cpu().half().contiguous() for k, v in model.state_dict().items()
               if k != "lm_head.weight"}  # tied to the token embedding
    machine = (torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else
               f"{os.cpu_count()} CPU cores" if model.device.type == "cpu" else model.device.type)
    record = {"config": asdict(cfg), "seed": cfg.seed, "corpus": fingerprint(train_ids), "torch": torch.__version__,
              "machine": machine, "history": history}

    def _save(tmp: Path) -> None:
        save_file(weights, str(tmp / "model.safetensors"))
        (tmp / "pretraining.json").write_text(json.dumps(record) + "\n")
    return save_atomic(shipped_path(cfg, model.config.vocab_size), _save)


def load_shipped(model: GPT2LMHeadModel, cfg: BaseConfig, train_ids: torch.Tensor) -> dict[str, Any] | None:
    """Load shipped weights into `model` and return their pretraining history, or None when none were trained with
    this config, seed and corpus."""
    from safetensors.torch import load_file

    path = shipped_path(cfg, model.config.vocab_size)
    if not (path / "pretraining.json").exists():
        return None
    record = json.loads((path / "pretraining.json").read_text())
    if record["corpus"] != fingerprint(train_ids):
        print(f"The weights in {path} were pretrained on another corpus or tokenizer: pretraining here instead.")
        return None
    weights = load_file(str(path / "model.safetensors"))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise ValueError(f"{path} does not fit this model (missing {missing}, unexpected {unexpected}); delete it "
                         "or set base.shipped_weights=False.")
    model.tie_weights()
    where = path.relative_to(_REPO) if path.is_relative_to(_REPO) else path
    return {**record["history"], "shipped": str(where), "machine": record["machine"]}


def pretrain(model: GPT2LMHeadModel, train_ids: torch.Tensor, heldout_ids: torch.Tensor, cfg: BaseConfig,
             out_dir: Path, stop_after: int | None = None, progress: bool = True,
             speed: SpeedConfig = SpeedConfig()) -> dict[str, Any]:
    """Pretrain `model` in place (data order from `cfg.seed`); return the loss history {"step", "train_loss",
    "eval_step", "eval_loss", ...}.

    Writes `out_dir/checkpoint-<hash>.pt` every `cfg.checkpoint_every` steps (atomically) and resumes from it when
    called again with the same config, so a killed run loses at most `checkpoint_every` steps. `stop_after` ends
    this call after that many steps, as if killed (time-boxing, tests). With `cfg.shipped_weights`, weights shipped in
    `data/pretrained/` for this very config, seed and corpus are loaded instead, with their history.

    A model that arrives pretrained (`cfg.hub_model`: GPT-2 has read the web, not this world) is continued; its
    held-out perplexity before the first step is `history["heldout_ppl_before"]`, on the same windows as
    `evaluate_base`'s, so the two show what reading the world taught it.
    """
    check_context(model, cfg.block_size)
    shipped = load_shipped(model, cfg, train_ids) if cfg.shipped_weights else None
    if shipped is not None:
        print(f"Loaded the pretrained weights that ship in {shipped['shipped']}: {shipped['step'][-1]} steps, "
              f"{shipped['train_seconds'] / 60:.0f} min on {shipped['machine']} (base.shipped_weights=False pretrains "
              "here).")
        return shipped
    device = next(model.parameters()).device
    optimizer = adamw(model, cfg.lr, cfg.weight_decay, speed=speed)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: dict[str, list] = {"step": [], "train_loss": [], "lr": [], "eval_step": [], "eval_loss": []}
    step, elapsed = 0, 0.0
    ckpt_path = Path(out_dir) / f"checkpoint-{_config_hash(cfg, model.config.vocab_size)}.pt"
    inputs = fingerprint(model, train_ids)  # resume only a run from the same initial weights and corpus
    ckpt = load_checkpoint(ckpt_path, device, inputs=inputs)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        history, step, elapsed = ckpt["history"], ckpt["step"], ckpt["elapsed"]
        print(f"Resuming pretraining from {ckpt_path.name} at step {step}/{cfg.max_steps}.")
    eval_x, eval_y = heldout_windows(heldout_ids, cfg.block_size)
    if cfg.hub_model and step == 0:
        history["heldout_ppl_before"] = perplexity(model, eval_x, eval_y)

    model.train()
    start, steps_this_call = time.time() - elapsed, 0
    bar = tqdm(total=cfg.max_steps, initial=step, desc="pretraining", disable=not progress)
    while step < cfg.max_steps:
        if stop_after is not None and steps_this_call >= stop_after:
            break
        set_lr(optimizer, cosine_lr(step, cfg.max_steps, cfg.warmup_steps, cfg.lr, cfg.min_lr))
        x, y = get_batch(train_ids, cfg.block_size, cfg.batch_size, gen)
        rows = my_rows(len(x))  # every process draws the same windows and trains on its own rows
        with autocast(device, speed):
            loss = lm_loss(model, x[rows].to(device), y[rows].to(device))
        optimizer_step(model, optimizer, loss, cfg.grad_clip)
        step += 1
        steps_this_call += 1
        history["step"].append(step)
        history["train_loss"].append(loss.item())
        history["lr"].append(optimizer.param_groups[0]["lr"])
        check_finite(loss, f"Pretraining loss at step {step}",
                     f"lower base.lr (now {cfg.lr}) or raise base.warmup_steps (now {cfg.warmup_steps}).")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            n = cfg.eval_batches * cfg.batch_size
            history["eval_step"].append(step)
            history["eval_loss"].append(math.log(perplexity(model, eval_x, eval_y, cfg.batch_size, n)))
            bar.set_postfix(train=f"{history['train_loss'][-1]:.3f}", heldout=f"{history['eval_loss'][-1]:.3f}")
        if step % cfg.checkpoint_every == 0 and step < cfg.max_steps:
            save_checkpoint(ckpt_path, model=model.state_dict(), optimizer=optimizer.state_dict(), step=step,
                            generator=gen.get_state(), history=history, elapsed=time.time() - start, inputs=inputs)
        bar.update(1)
    bar.close()
    history["train_seconds"] = time.time() - start
    history["finished"] = step >= cfg.max_steps
    history["tokens_seen"] = step * cfg.batch_size * cfg.block_size
    if history["finished"]:
        ckpt_path.unlink(missing_ok=True)  # the saved model replaces it
    return history


# ---------------------------------------------------------------------------------------------------------------
# 4) Samples, saving and loading


@torch.no_grad()
def sample(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_new_tokens: int = 60,
           temperature: float = 0.8, top_k: int = 50, seed: int = 0) -> list[str]:
    """Continue each prompt by sampling; returns the continuations only."""
    model.eval()
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    old_side, tokenizer.padding_side = tokenizer.padding_side, "left"  # decoder-only models continue on the right
    enc = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    tokenizer.padding_side = old_side
    out = model.generate(**enc, do_sample=True, temperature=temperature, top_k=top_k, max_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def model_dir(profile: str) -> Path:
    """`artifacts/<profile>/base/model/`: weights (safetensors), config and tokenizer."""
    return step_dir(profile, "base") / "model"


def save_base(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> Path:
    """`save_pretrained` model and tokenizer into one folder, atomically."""
    def _save(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return save_atomic(path, _save)


def load_pretrained(path: Path | str, device: str = "auto") -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """Load a model + tokenizer folder written by `save_base` (or a hub name, in the online profile)."""
    model = GPT2LMHeadModel.from_pretrained(path)
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(path), model)
    return model.to(resolve_device(device)), tokenizer


def load_base(cfg: Profile) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """The profile's base model and tokenizer; builds them (notebook 00's work) when they are missing."""
    path = model_dir(cfg.name)
    if not (path / "config.json").exists():
        print(f"No base model at {path}: building it (this is what notebook 00 does).")
        build_base(cfg, progress=True)
    return load_pretrained(path, cfg.device)


def get_tokenizer(cfg: Profile) -> PreTrainedTokenizerBase:
    """The profile's tokenizer, which every model of the profile shares and the world's corpus is tokenised with:
    the hub model's own (GPT-2's BPE, a PAD added) when `base.hub_model` is set, since its embeddings are indexed
    by it; else byte-level BPE trained on the training corpus."""
    if cfg.base.hub_model:
        return ensure_pad_token(from_hub(AutoTokenizer.from_pretrained, cfg.base.hub_model, "base.hub_model"))
    corpus = corpus_for(cfg.world)
    texts = [d.text for d in corpus.train_documents()]
    return train_tokenizer(texts, cfg.tokenizer.vocab_size, cfg.tokenizer.min_frequency)


def evaluate_base(model: GPT2LMHeadModel, train_ids: torch.Tensor, heldout_ids: torch.Tensor,
                  block_size: int) -> dict[str, float]:
    """Held-out perplexity of the model and of the unigram baseline, on the same target tokens."""
    x, y = heldout_windows(heldout_ids, block_size)
    return {"heldout_ppl": perplexity(model, x, y),
            "unigram_ppl": unigram_perplexity(train_ids, y, model.config.vocab_size)}


def build_base(cfg: Profile, progress: bool = True) -> dict[str, Any]:
    """Notebook 00's steps in its order, without the prose: tokenizer, model, pretraining (continued, for a hub
    model), evaluation, save, metrics."""
    out = step_dir(cfg.name, "base")
    tokenizer = get_tokenizer(cfg)
    train_ids, heldout_ids = (corpus_ids(cfg.world, tokenizer, split) for split in ("train", "heldout"))
    model = init_model(cfg, tokenizer)
    history = pretrain(model, train_ids, heldout_ids, cfg.base, out, progress=progress, speed=cfg.speed)
    block = min(cfg.base.block_size, model.config.n_positions)
    scores = evaluate_base(model, train_ids, heldout_ids, block)
    save_base(model, tokenizer, model_dir(cfg.name))
    metrics = {**scores, **base_summary(cfg, model, tokenizer, history)}
    write_metrics(cfg.name, "base", metrics)
    return metrics


def large_config(cfg: Profile) -> BaseConfig:
    """The base config of GPT-L (`rlhf_lib.baselines`): same training recipe, larger shape. It lives here, beside the
    base config it varies, so that shipping GPT-L's weights needs nothing from the baselines module."""
    e = cfg.eval
    return replace(cfg.base, n_layer=e.large_n_layer, n_head=e.large_n_head, n_embd=e.large_n_embd,
                   hub_model=e.large_hub_model)  # a hub GPT-L continues pretraining like the hub base model


def pretrain_and_ship(cfg: Profile, progress: bool = True) -> dict[str, Any]:
    """The maintainers' step after a change to the world, the corpus or the pretraining config: pretrain the profile's
    base model and its larger sibling GPT-L here (resuming from checkpoints) and ship both in `data/pretrained/`.

        python -m rlhf_lib.train ship --profile default
    """
    tokenizer = get_tokenizer(cfg)
    train_ids, heldout_ids = (corpus_ids(cfg.world, tokenizer, split) for split in ("train", "heldout"))
    shipped = {}
    for name, base_cfg in (("base", cfg.base), ("large", large_config(cfg))):
        base_cfg = replace(base_cfg, shipped_weights=False)
        field = "base.hub_model" if name == "base" else "eval.large_hub_model"
        model = starting_model(base_cfg, tokenizer, field).to(resolve_device(cfg.device))
        history = pretrain(model, train_ids, heldout_ids, base_cfg, step_dir(cfg.name, "base"),
                           progress=progress, speed=cfg.speed)
        shipped[name] = str(ship_pretrained(model, history, base_cfg, train_ids))
    return shipped


def base_summary(cfg: Profile, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                 history: dict[str, Any]) -> dict[str, Any]:
    """The rest of `base/metrics.json`: the run, and a hub model's held-out perplexity before it read the world."""
    before = {"heldout_ppl_before": history["heldout_ppl_before"]} if "heldout_ppl_before" in history else {}
    return {**before, "train_seconds": history["train_seconds"], "tokens_seen": history["tokens_seen"],
            "n_params": n_params(model), "vocab_size": len(tokenizer), "profile": cfg.name,
            "hub_model": cfg.base.hub_model, "final_train_loss": (history.get("train_loss") or [None])[-1],
            "shipped_weights": history.get("shipped")}
