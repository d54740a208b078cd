"""The paper's other baselines (Section 5.1, Figures 1 and 3): a larger GPT, and GPT fine-tuned on public NLP tasks.

- GPT-L: a larger base model pretrained the same way on the same corpus (the paper compares 1.3B, 6B and 175B;
  its headline is that 1.3B InstructGPT is preferred to 175B GPT-3). The `gpt2` profile loads a larger hub model.
- GPT-FT: the base model fine-tuned on the "public NLP" task formats (`rlhf_lib.nlp_tasks`), the analogue of the
  paper's FLAN and T0 baselines: instruction-tuned on academic datasets rather than on what users ask for.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase

from rlhf_lib.artifacts import step_dir
from rlhf_lib.base_model import (corpus_ids, large_config, load_base, load_pretrained, new_model, pretrain,
                                 resolve_device, save_base, world_for)
from rlhf_lib.data import SFTRecord
from rlhf_lib.hub import from_hub
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


def load_large_base(cfg: Any, progress: bool = True) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """GPT-L: pretrained like the base model (same corpus, tokenizer, steps, schedule) the first time, then loaded.
    Its checkpoints are keyed by its own config, so a kill resumes it like the base model. Its config is
    `base_model.large_config`, which the shipping step (`base_model.pretrain_and_ship`) also uses."""
    path = large_dir(cfg.name)
    if (path / "config.json").exists():
        return load_pretrained(path, cfg.device)
    if cfg.eval.large_hub_model:
        return from_hub(lambda name: load_pretrained(name, cfg.device), cfg.eval.large_hub_model,
                        "eval.large_hub_model")
    _, tokenizer = load_base(cfg)
    train_ids, heldout_ids = (corpus_ids(cfg.world, tokenizer, split) for split in ("train", "heldout"))
    base_cfg = large_config(cfg)
    model = new_model(base_cfg, tokenizer, base_cfg.seed).to(resolve_device(cfg.device))
    pretrain(model, train_ids, heldout_ids, base_cfg, path.parent, progress=progress, speed=cfg.speed)
    save_base(model, tokenizer, path)
    return model, tokenizer
