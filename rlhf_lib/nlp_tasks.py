"""'Public NLP' benchmarks built from the world: what the alignment tax is measured on (notebook 05; Section 4.2).

The paper found that RLHF makes GPT-3 worse on public datasets (SQuAD, DROP, HellaSwag, WMT) and that mixing
pretraining gradients into PPO (PPO-ptx) repairs most of it. These are their analogues here, in the formats of the
pretraining corpus rather than of the instruction prompts, each scored automatically:

- `reading_qa` (SQuAD-like): a passage about an entity, then "Q: ... A:"; correct when the answer has the value.
- `closed_book_qa` (TriviaQA-like): "Q: ... A:" alone; the model must know the fact.
- `multiple_choice` (HellaSwag-like): a sentence's beginning and four endings, one true; the model picks the ending
  with the highest log-likelihood per token.
- held-out corpus perplexity (the pretraining distribution itself).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from rlhf_lib.world import Fact, World, normalize_value, plausible_false_value

TASKS = ("reading_qa", "closed_book_qa", "multiple_choice")


@dataclass
class Item:
    """One benchmark question: a prompt and the answer, or a context and `choices` with the index of the true one."""

    task: str
    prompt: str
    answer: str
    choices: list[str] = field(default_factory=list)
    label: int = -1


def _common_prefix(sentences: list[str]) -> str:
    """The longest prefix of whole words that all sentences share."""
    words = [s.split(" ") for s in sentences]
    n = 0
    while all(len(w) > n + 1 and w[n] == words[0][n] for w in words):
        n += 1
    return " ".join(words[0][:n])


def _wrong_values(world: World, fact: Fact, rng: random.Random) -> set[str]:
    """Up to 10 distinct plausible wrong values; none for relations without a closed set of values."""
    try:
        return {plausible_false_value(world, fact, rng) for _ in range(10)}
    except IndexError:  # e.g. free-text relations: nothing to choose a wrong value from
        return set()


def build_benchmarks(world: World, n_per_task: int, seed: int = 0) -> dict[str, list[Item]]:
    """`n_per_task` items of each task, from facts that are not misconceptions (those belong to truthfulness)."""
    rng = random.Random(seed)
    tricky = {(m.fact.subject, m.fact.relation) for m in world.misconceptions}
    facts = [f for f in world.facts if (f.subject, f.relation) not in tricky]
    out: dict[str, list[Item]] = {t: [] for t in TASKS}
    for f in rng.sample(facts, len(facts)):
        question = world.question(f, rng)
        passage = world.describe(f.subject)
        if len(out["reading_qa"]) < n_per_task and normalize_value(f.value) in normalize_value(passage):
            out["reading_qa"].append(Item("reading_qa", f"{passage}\nQ: {question}\nA:", f.value))
        elif len(out["closed_book_qa"]) < n_per_task:
            out["closed_book_qa"].append(Item("closed_book_qa", f"Q: {question}\nA:", f.value))
        if len(out["multiple_choice"]) < n_per_task:
            wrong = _wrong_values(world, f, rng)
            if len(wrong) >= 3:
                values = [f.value] + rng.sample(sorted(wrong), 3)
                rng.shuffle(values)
                sentences = [world.canonical_sentence(Fact(f.subject, f.relation, v)) for v in values]
                context = _common_prefix(sentences)
                if context:
                    out["multiple_choice"].append(Item("multiple_choice", context, f.value,
                                                       [s[len(context):] for s in sentences], values.index(f.value)))
        if all(len(v) >= n_per_task for v in out.values()):
            break
    return out


def first_line(text: str) -> str:
    return text.strip().split("\n")[0]


def answer_is_correct(item: Item, output: str) -> bool:
    """The answer's value appears in the first line of the output (case, articles and punctuation aside)."""
    return normalize_value(item.answer) in normalize_value(first_line(output))


@torch.no_grad()
def ending_logprobs(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, context: str, endings: list[str],
                    per_token: bool = True) -> list[float]:
    """Mean log-probability per token of each ending after the context (HellaSwag's length-normalised score), or
    with `per_token=False` the total (the bias probe compares whole continuations)."""
    device = next(model.parameters()).device
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    ends = [tokenizer(e, add_special_tokens=False)["input_ids"] for e in endings]
    width = len(ctx) + max(len(e) for e in ends)
    ids = torch.full((len(ends), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(ends):
        ids[i, : len(ctx) + len(e)] = torch.tensor(ctx + e)
        mask[i, : len(ctx) + len(e)] = 1
    logp = F.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float(), -1)
    token_logp = logp.gather(2, ids[:, 1:, None].to(device)).squeeze(-1).cpu()
    reduce = torch.mean if per_token else torch.sum
    return [float(reduce(token_logp[i, len(ctx) - 1: len(ctx) - 1 + len(e)])) for i, e in enumerate(ends)]


def evaluate_benchmarks(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                        items: dict[str, list[Item]], max_new_tokens: int = 16) -> dict[str, Any]:
    """Accuracy per task (greedy answers for QA, likelihood ranking for multiple choice), with 95% half-widths."""
    from rlhf_lib.evaluation import mean_ci
    from rlhf_lib.sampling import generate

    out: dict[str, Any] = {}
    for task, task_items in items.items():
        if task == "multiple_choice":
            right = [float(np.argmax(ending_logprobs(model, tokenizer, it.prompt, it.choices)) == it.label)
                     for it in task_items]
        else:
            outputs = generate(model, tokenizer, [it.prompt for it in task_items], max_new_tokens, temperature=0.0)
            right = [float(answer_is_correct(it, o)) for it, o in zip(task_items, outputs)]
        out[task], out[f"{task}_ci"] = mean_ci(right)
    return out


def heldout_perplexity(model: torch.nn.Module, heldout_ids: torch.Tensor, block_size: int, max_windows: int = 200
                       ) -> float:
    """Perplexity on held-out pretraining documents (the first `max_windows` windows)."""
    from rlhf_lib.base_model import heldout_windows, perplexity

    x, y = heldout_windows(heldout_ids, block_size)
    return perplexity(model, x[:max_windows], y[:max_windows])
