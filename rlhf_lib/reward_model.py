"""The reward model: the SFT transformer without its unembedding, and one scalar head (notebook 03; Section 3.5).

    r_theta(x, y) = w^T h_T(x, y) + b,   h_T the last hidden state at the final real token (the EOS after y)

It is trained on labeler rankings with `rlhf_lib.losses.rm_loss`: the K completions of a prompt go through the model
once each, in one batch element, and every pair of them is compared from the K scores. After training, the bias is
shifted so that the labelers' demonstrations score 0 on average, as the paper normalises before RL.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import GPT2LMHeadModel, GPT2Model, PreTrainedTokenizerBase

from rlhf_lib.artifacts import save_atomic
from rlhf_lib.config import RMConfig, SpeedConfig
from rlhf_lib.labels import Judgement
from rlhf_lib.losses import pairwise_accuracy, rm_loss
from rlhf_lib.sft import encode_example
from rlhf_lib.speed import Beside, autocast, length_pieces, pass_tokens
from rlhf_lib.training import adamw, cosine_lr, my_rows, optimizer_step, read_losses, set_lr


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row, for left or right padding alike. (B, T) -> (B,)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask * positions).argmax(dim=1)


class RewardModel(torch.nn.Module):
    """A GPT-2 transformer (no LM head) and a linear head that reads the last real token."""

    def __init__(self, backbone: GPT2Model, seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        d = backbone.config.n_embd
        self.head = torch.nn.Linear(d, 1)
        gen = torch.Generator().manual_seed(seed)  # the same head whatever ran before (reruns reproduce)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, d, generator=gen) / math.sqrt(d + 1))  # small: early scores near 0
        torch.nn.init.zeros_(self.head.bias)

    @classmethod
    def from_lm(cls, lm: GPT2LMHeadModel, seed: int = 0) -> RewardModel:
        """Start from a language model (the SFT model): keep its transformer, drop the unembedding."""
        return cls(lm.transformer, seed)

    @property
    def config(self) -> Any:
        return self.backbone.config

    def token_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The head applied at every position (B, T): PPO's value model reads V(x, y_<t) from these."""
        position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)  # left padding must not shift positions
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=position_ids).last_hidden_state  # (B, T, d)
        return self.head(hidden).squeeze(-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores (B,) of sequences (B, T) that end with EOS (any padding side)."""
        scores = self.token_scores(input_ids, attention_mask)
        return scores[torch.arange(len(scores), device=scores.device), last_token_index(attention_mask)]

    def save(self, path: Path) -> Path:
        def _save(tmp: Path) -> None:
            self.backbone.save_pretrained(tmp, safe_serialization=True)
            save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, tmp / "reward_head.safetensors")
        return save_atomic(Path(path), _save)

    @classmethod
    def load(cls, path: Path, device: str | torch.device = "cpu") -> RewardModel:
        model = cls(GPT2Model.from_pretrained(path))
        model.head.load_state_dict(load_file(Path(path) / "reward_head.safetensors"))
        return model.to(device)


# ---------------------------------------------------------------------------------------------------------------
# Batches: the K completions of each prompt, flattened to one sequence each


@dataclass
class Comparison:
    """One ranked prompt: K completions and their ranks (lower is better, ties equal)."""

    prompt: str
    completions: list[str]
    ranks: list[int]


def comparisons_from(judgements: list[Judgement], prompts: dict[str, str]) -> list[Comparison]:
    return [Comparison(prompts[j.prompt_id], j.completions, j.ranks) for j in judgements]


def encode_comparisons(tokenizer: PreTrainedTokenizerBase, batch: list[Comparison], max_len: int
                       ) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask (sum K, T) right-padded, and ranks (B, K_max) with -1 padding."""
    seqs = [encode_example(tokenizer, c.prompt, y, max_len)[0] for c in batch for y in c.completions]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        input_ids[i, : len(s)], attention_mask[i, : len(s)] = torch.tensor(s), 1
    k_max = max(len(c.completions) for c in batch)
    ranks = torch.full((len(batch), k_max), -1, dtype=torch.long)
    for b, c in enumerate(batch):
        ranks[b, : len(c.ranks)] = torch.tensor(c.ranks)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "ranks": ranks}


def score_comparisons(model: RewardModel, enc: dict[str, torch.Tensor], max_tokens: int | None = None
                      ) -> torch.Tensor:
    """One forward pass per completion; scores laid out as (B, K_max), padding slots 0.

    `max_tokens`: run the completions as passes of at most that many tokens, rows of similar length cut to their own
    longest row (`speed.length_pieces`; same scores and gradients, less padding computed)."""
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if max_tokens is None:
        flat = model(ids, mask)                                             # (sum K,)
    else:
        lengths = mask.sum(1).tolist()
        pieces = length_pieces(lengths, max_tokens)
        widths = [max(lengths[i] for i in p) for p in pieces]
        flat = torch.cat([model(ids[p, :w], mask[p, :w]) for p, w in zip(pieces, widths)])
        order = torch.tensor([i for p in pieces for i in p], device=flat.device)
        flat = flat[torch.argsort(order)]                                   # back to the input's order
    valid = enc["ranks"] >= 0
    scores = torch.zeros(valid.shape, dtype=flat.dtype, device=flat.device)
    scores[valid] = flat                                                   # row-major: prompt by prompt
    return scores


def as_pairs(comparisons: list[Comparison]) -> list[Comparison]:
    """The ablation: every compared pair as its own data point (K=2), as if labelers had compared pairs."""
    out = []
    for c in comparisons:
        for i in range(len(c.completions)):
            for j in range(i + 1, len(c.completions)):
                if c.ranks[i] != c.ranks[j]:
                    w, l = (i, j) if c.ranks[i] < c.ranks[j] else (j, i)
                    out.append(Comparison(c.prompt, [c.completions[w], c.completions[l]], [1, 2]))
    return out


@torch.no_grad()
def accuracies(model: RewardModel, tokenizer: PreTrainedTokenizerBase, sets: dict[str, list[Comparison]],
               max_len: int, batch_size: int = 16, max_tokens: int | None = None) -> dict[str, float]:
    """{name: fraction of compared pairs that the reward model orders like the labeler}, one per set of comparisons.

    Sets of the same completions in the same order (validation prompts ranked by both labeler groups) are scored
    once: only their ranks differ."""
    model.eval()
    device = next(model.parameters()).device
    scored: dict[tuple, list[torch.Tensor]] = {}
    out = {}
    for name, comps in sets.items():
        key = tuple((c.prompt, *c.completions) for c in comps)
        if key not in scored:
            scored[key] = []
            for s in range(0, len(comps), batch_size):
                enc = {k: v.to(device) for k, v in encode_comparisons(tokenizer, comps[s: s + batch_size],
                                                                      max_len).items()}
                scored[key] += list(score_comparisons(model, enc, max_tokens).float().cpu())  # (K_max,) each
        right = total = 0
        for row, c in zip(scored[key], comps):
            r, t = pairwise_accuracy(row[None, : len(c.ranks)], torch.tensor([c.ranks]))
            right, total = right + r, total + t
        out[name] = right / max(total, 1)
    model.train()
    return out


def train_rm(model: RewardModel, tokenizer: PreTrainedTokenizerBase, train: list[Comparison],
             valid: dict[str, list[Comparison]], cfg: RMConfig, seed: int, epochs: int | None = None,
             evals_per_epoch: int = 3, progress: bool = True, speed: SpeedConfig = SpeedConfig()) -> dict[str, Any]:
    """Minimise `rm_loss` over prompts (B per step). Returns the history with train/valid accuracy over steps."""
    device = next(model.parameters()).device
    epochs = epochs or cfg.epochs
    max_len = min(cfg.max_len, model.config.n_positions)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * epochs
    optimizer = adamw(model, cfg.lr, cfg.weight_decay, speed=speed)
    budget = pass_tokens(device, speed)  # on a CPU: passes of similar-length completions, less padding
    every = max(1, steps_per_epoch // evals_per_epoch)
    history: dict[str, Any] = {"step": [], "loss": [], "eval_step": [], "train_acc": [],
                               **{f"{name}_acc": [] for name in valid}}
    probe = train[: max(64, len(train) // 10)]  # accuracy on training data: is it memorising?
    rng = random.Random(seed)
    t0, step, losses = time.time(), 0, []
    bar = tqdm(total=total, desc="reward model", disable=not progress)
    model.train()
    for _ in range(epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for s in range(0, len(order), cfg.batch_size):
            set_lr(optimizer, cosine_lr(step, total, cfg.warmup_steps, cfg.lr, cfg.lr * 0.1))
            batch = [train[i] for i in order[s: s + cfg.batch_size]]
            batch = batch[my_rows(len(batch))]  # this process's prompts (all of them in one process)
            enc = {k: v.to(device) for k, v in encode_comparisons(tokenizer, batch, max_len).items()}
            with autocast(device, speed):
                loss = rm_loss(score_comparisons(model, enc, budget).float(), enc["ranks"])
            optimizer_step(model, optimizer, loss, cfg.grad_clip)
            losses.append(loss.detach())  # read at the next evaluation, not each step (a GPU would wait)
            step += 1
            history["step"].append(step)
            bar.update(1)
            if step == total or (step % every == 0 and total - step >= every // 2):  # last one at the end
                history["loss"] += read_losses(losses, f"Reward-model loss before step {step}",
                                               f"lower rm.lr (now {cfg.lr}).")
                losses = []
                history["eval_step"].append(step / steps_per_epoch)
                for name, acc in accuracies(model, tokenizer, {"train": probe, **valid}, max_len,
                                            max_tokens=budget).items():
                    history[f"{name}_acc"].append(acc)
                bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", **{k: f"{v[-1]:.3f}" for k, v in history.items()
                                                               if k.endswith("_acc")})
    bar.close()
    history["train_seconds"] = time.time() - t0
    return history


@torch.no_grad()
def normalize(model: RewardModel, tokenizer: PreTrainedTokenizerBase, pairs: list[tuple[str, str]], max_len: int,
              batch_size: int = 32) -> float:
    """Shift the head's bias so that the (prompt, demonstration) pairs score 0 on average; returns the old mean."""
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for s in range(0, len(pairs), batch_size):
        comps = [Comparison(p, [d], [1]) for p, d in pairs[s: s + batch_size]]
        enc = {k: v.to(device) for k, v in encode_comparisons(tokenizer, comps, max_len).items()}
        scores.append(model(enc["input_ids"], enc["attention_mask"]))
    mean = torch.cat(scores).mean()
    model.head.bias -= mean
    return float(mean)


# ---------------------------------------------------------------------------------------------------------------
# Notebook 03 without the prose: comparison data, training, the ablation, normalisation


def model_dir(profile: str) -> Path:
    from rlhf_lib.artifacts import step_dir

    return step_dir(profile, "rm") / "model"


def sample_candidates(policies: list[tuple[torch.nn.Module, float]], tokenizer: PreTrainedTokenizerBase,
                      prompts: list[str], cfg: RMConfig, k_min: int, k_max: int, seed: int
                      ) -> tuple[list[list[str]], list[list[int]]]:
    """K completions per prompt (K uniform in [k_min, k_max]), each from a policy drawn with the given weights.

    Returns the completions and, in the same layout, the index of the policy that wrote each one."""
    from rlhf_lib.sampling import generate

    rng = random.Random(seed)
    ks = [rng.randint(k_min, k_max) for _ in prompts]
    owner = [[rng.choices(range(len(policies)), weights=[w for _, w in policies])[0] for _ in range(k)] for k in ks]
    out: list[list[str]] = [[""] * k for k in ks]
    for p, (policy, _) in enumerate(policies):
        slots = [(i, j) for i, row in enumerate(owner) for j, o in enumerate(row) if o == p]
        if not slots:  # a policy of weight 0 (rm.p_base_policy=0) writes nothing
            continue
        texts = generate(policy, tokenizer, [prompts[i] for i, _ in slots], cfg.max_new_tokens,
                         temperature=cfg.temperature, seed=seed + p)
        for (i, j), t in zip(slots, texts):
            out[i][j] = t
    return out, owner


def rank_all(world: Any, records: list, completions: list[list[str]], pool: list, group: str, seed: int
             ) -> list[Judgement]:
    """Each prompt ranked by one random labeler of `group` (most comparisons in the paper had one labeler)."""
    import numpy as np

    from rlhf_lib.checks import check
    from rlhf_lib.dataset import task_of
    from rlhf_lib.labelers import judge, pick

    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    out = []
    for rec, comps in zip(records, completions):
        task = task_of(rec)
        out.append(judge(pick(pool, group, rng), rec.prompt_id, comps, [check(world, task, c) for c in comps], nrng))
    return out


def write_judgements(path: Path, judgements: list[Judgement]) -> Path:
    """A whole labels file at once, atomically (the widget appends line by line to its own file)."""
    import json

    from rlhf_lib.artifacts import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(j.to_dict()) + "\n" for j in judgements))
    return path


def build_rm(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Notebook 03's steps in its order: sample and rank comparisons, train the reward model (and the pairs
    ablation beside it), normalise, read it against the truth, save, write the metrics."""
    from rlhf_lib.base_model import load_base, world_for
    from rlhf_lib.dataset import load_pool
    from rlhf_lib.sft import load_sft

    policy, tokenizer = load_sft(cfg)
    base, _ = load_base(cfg)
    world, pool = world_for(cfg.world), load_pool(cfg.name)
    data = comparison_data(cfg, world, pool, policy, base, tokenizer)
    train, valid = rm_datasets(cfg, data)
    ablation_run = start_ablation(cfg, tokenizer, train, valid)
    rm = RewardModel.from_lm(load_sft(cfg)[0], cfg.seed)
    history = train_rm(rm, tokenizer, train, valid, cfg.rm, cfg.seed, progress=progress, speed=cfg.speed)
    ablation = ablation_run.result() if ablation_run is not None else None
    shift = normalize_on_demonstrations(cfg, rm, tokenizer)
    readings = validation_readings(cfg, world, pool, rm, tokenizer, data)
    metrics = rm_metrics(history, ablation, train, shift, readings)
    return save_rm(cfg, rm, metrics)


def rm_datasets(cfg: Any, data: dict[str, list[Judgement]]) -> tuple[list[Comparison], dict[str, list[Comparison]]]:
    """Training comparisons (the training labelers' rankings plus the labels you gave with notebook 03's widget,
    `rlhf_lib.widgets.human_labels_path`, on training prompts only) and the two validation sets."""
    from rlhf_lib.dataset import load_dataset
    from rlhf_lib.widgets import human_labels_path, merge_human_labels

    records = {name: load_dataset(cfg.name, name) for name in ("rm_train", "rm_valid", "sft_train")}
    prompts = {r.prompt_id: r.prompt for recs in records.values() for r in recs}
    valid_ids = {r.prompt_id for r in records["rm_valid"]}
    merged = merge_human_labels(data["train"], human_labels_path(cfg.name))
    train = comparisons_from([j for j in merged if j.prompt_id in prompts and j.prompt_id not in valid_ids], prompts)
    return train, {name: comparisons_from(data[name], prompts) for name in ("valid_train", "valid_heldout")}


def normalize_on_demonstrations(cfg: Any, rm: RewardModel, tokenizer: PreTrainedTokenizerBase) -> float:
    """`normalize` on the SFT training demonstrations (the paper: they score 0 on average before RL)."""
    from rlhf_lib.dataset import load_dataset

    return normalize(rm, tokenizer, [(r.prompt, r.demonstration) for r in load_dataset(cfg.name, "sft_train")],
                     min(cfg.rm.max_len, rm.config.n_positions))


def validation_readings(cfg: Any, world: Any, pool: list, rm: RewardModel, tokenizer: PreTrainedTokenizerBase,
                        data: dict[str, list[Judgement]]) -> dict[str, Any]:
    """The reward model against the truth on the validation rankings (analysis only: reads the gold utility and the
    labelers' weights, never used in training).

    `scores`, `gold`: per validation prompt, the RM's and the gold utility's score of each completion;
    `correlation`: their correlation over all completions; `ceilings`: {group: accuracy of noise-free scorers}
    (`labelers.accuracy_ceilings`, plus `axes_learned`: a Bradley-Terry model of the checker's axes fitted on the
    training rankings); `reading`: {what differs: (accuracy, pairs)}; `slip_reading`: {slip: (accuracy, pairs)}.
    """
    import numpy as np

    from rlhf_lib.checks import check
    from rlhf_lib.dataset import load_dataset, task_of
    from rlhf_lib.demonstrators import slip_reading_accuracy, slip_signs
    from rlhf_lib.labelers import accuracy_ceilings, axes_model_accuracy, features, gold_utility, reading_accuracy

    records = {r.prompt_id: r for name in ("rm_train", "rm_valid") for r in load_dataset(cfg.name, name)}
    checks = {name: [[check(world, task_of(records[j.prompt_id]), c) for c in j.completions] for j in data[name]]
              for name in ("train", "valid_train", "valid_heldout")}
    feats = {name: [np.stack([features(ch, c) for ch, c in zip(row, j.completions)])
                    for row, j in zip(rows, data[name])] for name, rows in checks.items()}
    rm.eval()
    scores = []
    with torch.no_grad():
        for j in data["valid_train"]:
            enc = encode_comparisons(tokenizer, [Comparison(records[j.prompt_id].prompt, j.completions, j.ranks)],
                                     min(cfg.rm.max_len, rm.config.n_positions))
            scores.append(score_comparisons(rm, enc)[0, : len(j.completions)].float().numpy())
    gold = [np.array([gold_utility(ch, c) for ch, c in zip(row, j.completions)])
            for row, j in zip(checks["valid_train"], data["valid_train"])]
    ceilings = {}
    for group in ("valid_train", "valid_heldout"):
        ceilings[group] = accuracy_ceilings(pool, feats[group], data[group])
        ceilings[group]["axes_learned"] = axes_model_accuracy(feats["train"], [j.ranks for j in data["train"]],
                                                              feats[group], [j.ranks for j in data[group]])[0]
    signs = [[slip_signs(task_of(records[j.prompt_id]), ch, c) for ch, c in zip(row, j.completions)]
             for row, j in zip(checks["valid_train"], data["valid_train"])]
    return {"scores": scores, "gold": gold,
            "correlation": float(np.corrcoef(np.concatenate(scores), np.concatenate(gold))[0, 1]),
            "ceilings": ceilings, "reading": reading_accuracy(scores, feats["valid_train"]),
            "slip_reading": slip_reading_accuracy(scores, signs)}


def save_rm(cfg: Any, rm: RewardModel, metrics: dict[str, Any]) -> dict[str, Any]:
    """Save the reward model to `model_dir` and its metrics to `rm/metrics.json`; returns the metrics."""
    from rlhf_lib.artifacts import write_metrics

    rm.save(model_dir(cfg.name))
    write_metrics(cfg.name, "rm", metrics)
    return metrics


def start_ablation(cfg: Any, tokenizer: PreTrainedTokenizerBase, train: list[Comparison],
                   valid: dict[str, list[Comparison]]) -> Beside | None:
    """`run_ablation` started beside the main reward model's training (on a CPU, in a second process with half the
    threads: these small models leave cores idle); `.result()` gives its runs. None when `rm.ablation` is off."""
    from rlhf_lib.base_model import resolve_device

    if not cfg.rm.ablation:
        return None
    return Beside(run_ablation, (cfg, tokenizer, train, valid, False), resolve_device(cfg.device), cfg.speed)


def run_ablation(cfg: Any, tokenizer: PreTrainedTokenizerBase, train: list[Comparison],
                 valid: dict[str, list[Comparison]], progress: bool = True) -> dict[str, dict[str, Any]]:
    """The paper's ablation on the first `rm.ablation_prompts` prompts: the same rankings trained two ways, all
    C(K,2) pairs of a prompt in one batch element ("grouped") vs every pair a shuffled data point ("pairs")."""
    from rlhf_lib.sft import load_sft

    subset = train[: cfg.rm.ablation_prompts]
    runs = {}
    for name, data in (("grouped", subset), ("pairs", as_pairs(subset))):
        model = RewardModel.from_lm(load_sft(cfg)[0], cfg.seed)
        runs[name] = train_rm(model, tokenizer, data, valid, cfg.rm, cfg.seed, progress=progress, speed=cfg.speed)
    return runs


def rm_metrics(history: dict[str, Any], ablation: dict[str, dict[str, Any]] | None, train: list[Comparison],
               shift: float, readings: dict[str, Any]) -> dict[str, Any]:
    """`rm/metrics.json`: held-out accuracy by labeler group, the pairs ablation, wall times, and the readings
    against the truth (`validation_readings`)."""
    metrics = {"acc_train_labelers": history["valid_train_acc"][-1],
               "acc_heldout_labelers": history["valid_heldout_acc"][-1],
               "acc_train_data": history["train_acc"][-1], "train_seconds": history["train_seconds"],
               "n_train_prompts": len(train), "n_train_pairs": len(as_pairs(train)), "score_shift": shift,
               "rm_gold_correlation": readings["correlation"]}
    metrics |= {f"ceiling_{k}_{g.removeprefix('valid_')}": v for g, c in readings["ceilings"].items()
                for k, v in c.items()}
    metrics |= {f"reading_{kind.replace(' ', '_')}": acc for kind, (acc, _) in readings["reading"].items()}
    metrics |= {f"reading_slip_{slip}": acc for slip, (acc, _) in readings["slip_reading"].items()}
    if ablation is not None:
        grouped, pairs = ablation["grouped"], ablation["pairs"]
        metrics |= {"acc_pairs_ablation": pairs["valid_train_acc"][-1],
                    "acc_pairs_ablation_heldout": pairs["valid_heldout_acc"][-1],
                    "acc_pairs_ablation_train_data": pairs["train_acc"][-1],
                    "train_seconds_pairs_ablation": pairs["train_seconds"],
                    "acc_grouped_ablation": grouped["valid_train_acc"][-1],
                    "acc_grouped_ablation_heldout": grouped["valid_heldout_acc"][-1],
                    "acc_grouped_ablation_train_data": grouped["train_acc"][-1],
                    "train_seconds_grouped_ablation": grouped["train_seconds"]}
    return metrics


def comparison_data(cfg: Any, world: Any, pool: list, policy: torch.nn.Module, base: torch.nn.Module,
                    tokenizer: PreTrainedTokenizerBase) -> dict[str, list[Judgement]]:
    """Rankings of sampled completions: train prompts by training labelers; valid prompts by both groups.

    Written to `rm/labels_train.jsonl`, `rm/labels_valid_train.jsonl`, `rm/labels_valid_heldout.jsonl`, and
    `rm/samples_train.jsonl` (what the ranking widget shows a person). The training prompts are sampled in two
    halves, each with its own seed, so that the samples are the same whether the halves run one after the other or
    side by side.
    """
    import json

    from rlhf_lib.artifacts import step_dir, write_text_atomic
    from rlhf_lib.base_model import resolve_device
    from rlhf_lib.dataset import load_dataset

    out = step_dir(cfg.name, "rm")
    policies = [(policy, 1 - cfg.rm.p_base_policy), (base, cfg.rm.p_base_policy)]
    lc = cfg.labelers
    train = load_dataset(cfg.name, "rm_train")[: cfg.rm.max_prompts]
    valid = load_dataset(cfg.name, "rm_valid")[: cfg.rm.max_valid_prompts]
    half = len(train) // 2  # on a CPU a second process samples the second half meanwhile (`speed.Beside`)
    second_half = Beside(sample_candidates, (policies, tokenizer, [r.prompt for r in train[half:]], cfg.rm, lc.k_min,
                                             lc.k_max, cfg.seed + 100), resolve_device(cfg.device), cfg.speed)
    comps_train = sample_candidates(policies, tokenizer, [r.prompt for r in train[:half]], cfg.rm, lc.k_min, lc.k_max,
                                    cfg.seed)[0]
    comps_valid = sample_candidates(policies, tokenizer, [r.prompt for r in valid], cfg.rm, lc.k_min, lc.k_max,
                                    cfg.seed + 1)[0]
    comps_train += second_half.result()[0]
    data = {"train": rank_all(world, train, comps_train, pool, "train", cfg.seed),
            "valid_train": rank_all(world, valid, comps_valid, pool, "train", cfg.seed + 1),
            "valid_heldout": rank_all(world, valid, comps_valid, pool, "heldout", cfg.seed + 2)}
    for name, judgements in data.items():
        write_judgements(out / f"labels_{name}.jsonl", judgements)
    write_text_atomic(out / "samples_train.jsonl", "".join(
        json.dumps({"prompt_id": r.prompt_id, "prompt": r.prompt, "completions": c}) + "\n"
        for r, c in zip(train, comps_train)))
    return data


def load_rm(cfg: Any) -> RewardModel:
    """The profile's reward model; trains it (notebook 03's work) when missing."""
    from rlhf_lib.base_model import resolve_device

    if not (model_dir(cfg.name) / "reward_head.safetensors").exists():
        print(f"No reward model at {model_dir(cfg.name)}: training it (this is what notebook 03 does).")
        build_rm(cfg)
    return RewardModel.load(model_dir(cfg.name), resolve_device(cfg.device))
