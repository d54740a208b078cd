"""The paper's other baselines (Section 5.1, Figures 1 and 3): a larger GPT, and GPT fine-tuned on public NLP tasks.

- GPT-L: a larger base model pretrained the same way on the same corpus (the paper compares 1.3B, 6B and 175B;
  its headline is that 1.3B InstructGPT is preferred to 175B GPT-3). The `gpt2` profile continues pretraining a
  larger hub model (gpt2-medium) on the world's corpus instead.
- GPT-FT: the base model fine-tuned on the "public NLP" task formats (`rlhf_lib.nlp_tasks`), the analogue of the
  paper's FLAN and T0 baselines: instruction-tuned on academic datasets rather than on what users ask for.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, GPT2LMHeadModel, PreTrainedTokenizerBase

from rlhf_lib.artifacts import step_dir, write_json_atomic
from rlhf_lib.base_model import (base_summary, corpus_ids, evaluate_base, large_config, load_base, load_pretrained,
                                 pretrain, resolve_device, save_base, starting_model, world_for)
from rlhf_lib.data import SFTRecord
from rlhf_lib.hub import from_hub
from rlhf_lib.tokenizer import ensure_pad_token
from rlhf_lib.nlp_tasks import Item, build_benchmarks
from rlhf_lib.sft import train_sft

FT_CATEGORY = {"reading_qa": "closed_qa", "closed_book_qa": "open_qa", "multiple_choice": "classification"}
"""The paper's use-case category each public task would fall under (the records need one)."""


def nlp_finetuning_records(world: Any, n_per_task: int, seed: int) -> list[SFTRecord]:
    """GPT-FT's training data: public-task items in their own formats, answer as the demonstration.

    Drawn with another seed than the alignment-tax benchmarks; multiple choice becomes "context -> true ending"."""
    records = []
    for task, items in build_benchmarks(world, n_per_task, seed + 1000).items():
        for i, it in enumerate(items):
            prompt, answer = _as_example(it)
            records.append(SFTRecord(prompt_id=f"ft-{task}-{i}", user_id="public-nlp", category=FT_CATEGORY[task],
                                     kind="few_shot", prompt=prompt, task={}, demonstration=answer))
    random.Random(seed).shuffle(records)
    return records


def _as_example(item: Item) -> tuple[str, str]:
    if item.task == "multiple_choice":
        return item.prompt, item.choices[item.label]
    return item.prompt, f" {item.answer}."


def gpt_ft_dir(profile: str) -> Path:
    return step_dir(profile, "eval") / "gpt_ft"


def load_gpt_ft(cfg: Any, progress: bool = True) -> GPT2LMHeadModel:
    """GPT-FT: fine-tunes the base model on the public tasks (SFT's loop and loss) the first time, then loads it."""
    path = gpt_ft_dir(cfg.name)
    if not (path / "config.json").exists():
        model, tokenizer = load_base(cfg)
        records = nlp_finetuning_records(world_for(cfg.world), cfg.eval.ft_items, cfg.seed)
        n_valid = max(1, len(records) // 10)
        ft_cfg = dataclasses.replace(cfg.sft, epochs=cfg.eval.ft_epochs, lora=False)
        train_sft(model, tokenizer, records[n_valid:], records[:n_valid], ft_cfg, path.parent / "gpt_ft_run",
                  cfg.seed, progress=progress, speed=cfg.speed)
        save_base(model, tokenizer, path)
    return load_pretrained(path, cfg.device)[0]


def large_dir(profile: str) -> Path:
    return step_dir(profile, "base") / "model_large"


def large_metrics_path(profile: str) -> Path:
    """`base/large_metrics.json`: GPT-L's held-out perplexity (before and after, for a hub GPT-L) and its run, beside
    the base model's `base/metrics.json`, which notebook 00 wrote before GPT-L was needed."""
    return step_dir(profile, "base") / "large_metrics.json"


def check_shared_tokenizer(cfg: Any, tokenizer: PreTrainedTokenizerBase) -> None:
    """A hub GPT-L must use the base model's tokenizer: the evaluation samples every model with that one tokenizer,
    and GPT-L reads the world's corpus in it, so another vocabulary would give it wrong tokens silently."""
    name = cfg.eval.large_hub_model
    own = ensure_pad_token(from_hub(AutoTokenizer.from_pretrained, name, "eval.large_hub_model"))
    if own.get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"GPT-L ({name!r}, eval.large_hub_model) has another vocabulary than the base model "
                         f"({cfg.base.hub_model!r}, base.hub_model); every model here shares one tokenizer. Choose a "
                         "larger model of the same family (for GPT-2: gpt2-medium, gpt2-large or gpt2-xl).")


def load_large_base(cfg: Any, progress: bool = True) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """GPT-L: pretrained like the base model (same corpus, tokenizer, steps, schedule) the first time, then loaded.
    A hub GPT-L (`eval.large_hub_model`, the gpt2 profile's gpt2-medium) continues pretraining on the world as the
    hub base model does, from its hub weights. Its checkpoints are keyed by its own config, so a kill resumes it like
    the base model; its held-out perplexities go to `large_metrics_path`. Its config is `base_model.large_config`,
    which the shipping step (`base_model.pretrain_and_ship`) also uses."""
    path = large_dir(cfg.name)
    if (path / "config.json").exists():
        return load_pretrained(path, cfg.device)
    _, tokenizer = load_base(cfg)
    if cfg.eval.large_hub_model:
        check_shared_tokenizer(cfg, tokenizer)
    train_ids, heldout_ids = (corpus_ids(cfg.world, tokenizer, split) for split in ("train", "heldout"))
    base_cfg = large_config(cfg)
    model = starting_model(base_cfg, tokenizer, "eval.large_hub_model").to(resolve_device(cfg.device))
    history = pretrain(model, train_ids, heldout_ids, base_cfg, path.parent, progress=progress, speed=cfg.speed)
    save_base(model, tokenizer, path)
    scores = evaluate_base(model, train_ids, heldout_ids, base_cfg.block_size)
    summary = base_summary(dataclasses.replace(cfg, base=base_cfg), model, tokenizer, history)
    write_json_atomic(large_metrics_path(cfg.name), {**scores, **summary})
    return model, tokenizer
