"""Measuring policies: the checker's axes and the gold utility of their samples, with confidence intervals.

Started in notebook 02 (base vs few-shot-prompted base vs SFT); the paper's full evaluation (win rates judged by
held-out labelers, Likert scores, truthfulness, toxicity) grows here in notebook 06.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlhf_lib.checks import check
from rlhf_lib.data import PromptRecord
from rlhf_lib.demonstrators import SLIPS, slip_signs
from rlhf_lib.labelers import gold_utility
from rlhf_lib.tasks import CLOSED_DOMAIN, Task
from rlhf_lib.world import World

AXIS_KEYS = ("attempts", "follows_constraints", "hallucinates", "appropriate", "correct", "gold")
SLIP_KEYS = tuple(f"slip_{s}" for s in SLIPS)
"""Share of samples showing each writer's slip (`rlhf_lib.demonstrators.slip_signs`), where it can show."""


def score_samples(world: World, records: list[PromptRecord], completions: list[str]) -> list[dict[str, Any]]:
    """One row per sample: the checker's axes and the gold utility (analysis only)."""
    rows = []
    for rec, text in zip(records, completions, strict=True):
        task = Task.from_dict(rec.task)
        c = check(world, task, text)
        signs = {f"slip_{k}": (None if v is None else float(v)) for k, v in slip_signs(task, c, text).items()}
        rows.append({"prompt_id": rec.prompt_id, "category": rec.category, "kind": rec.kind,
                     "attempts": float(c.attempts), "follows_constraints": c.follows_constraints,
                     "hallucinates": float(c.hallucinates), "appropriate": float(c.appropriate),
                     "correct": c.correct, "gold": gold_utility(c, text), "n_words": c.n_words, **signs})
    return rows


def score_oracle(cfg: Any, world: World, records: list[PromptRecord]) -> dict[str, float]:
    """The oracle's answers (perfect writers) on `records`, summarised like any policy's samples: the ceiling."""
    from rlhf_lib.dataset import load_oracles

    oracles = load_oracles(cfg.name)
    return summarize(score_samples(world, records, [oracles[r.prompt_id] for r in records]))


def mean_ci(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% confidence interval (None values are skipped)."""
    xs = np.array([v for v in values if v is not None], dtype=float)
    if len(xs) == 0:
        return float("nan"), float("nan")
    half = z * xs.std(ddof=1) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
    return float(xs.mean()), float(half)


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of every axis over the samples, and `<axis>_ci` the 95% half-width."""
    out: dict[str, float] = {}
    for key in AXIS_KEYS + SLIP_KEYS:
        m, h = mean_ci([r[key] for r in rows])
        out[key], out[f"{key}_ci"] = m, h
    return out


def few_shot_prefix(demos: list[tuple[str, str]], n_shots: int = 2) -> str:
    """The paper's GPT-3-prompted baseline: put solved examples before the prompt to coax instruction following."""
    shots = sorted(demos, key=lambda pr: len(pr[0]) + len(pr[1]))[:n_shots]
    return "".join(f"{p}{d}\n\n" for p, d in shots)


# ---------------------------------------------------------------------------------------------------------------
# Notebook 06: the paper's human evaluation (Section 4.1), judged by the held-out labelers


def bootstrap_ci(values: list[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
                 ) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap over items. The paper's win-rate plots show 95% intervals like this."""
    xs = np.asarray(values, dtype=float)
    if len(xs) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = xs[rng.integers(0, len(xs), (n_boot, len(xs)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(xs.mean()), float(lo), float(hi)


def judge_against_baseline(world: World, pool: list, records: list[PromptRecord], texts: list[str],
                           baseline_texts: list[str], seed: int, group: str = "heldout") -> list[dict[str, Any]]:
    """Per prompt, one labeler of `group` (held-out by default) ranks the model's sample against the baseline's
    (K = 2), as in the paper's win rates against SFT 175B. Row: win (1, 0.5 for a tie, 0), the labeler's 1-7 Likert
    score and metadata flags for the model's sample, and the checker's axes (the flags' ground truth) and gold."""
    import random as _random

    from rlhf_lib.labelers import judge, pick

    rng, nrng = _random.Random(seed), np.random.default_rng(seed)
    rows = []
    for rec, text, base, axes in zip(records, texts, baseline_texts, score_samples(world, records, texts),
                                     strict=True):
        task = Task.from_dict(rec.task)
        j = judge(pick(pool, group, rng), rec.prompt_id, [text, base], [check(world, task, text),
                                                                        check(world, task, base)], nrng)
        win = 0.5 if j.ranks[0] == j.ranks[1] else float(j.ranks[0] < j.ranks[1])
        flags = j.flags[0]
        rows.append(axes | {"win": win, "likert": j.likert[0], "has_constraints": bool(task.constraints),
                            "closed_domain": rec.category in CLOSED_DOMAIN,
                            "flag_fails_instruction": float(flags["fails_instruction"]),
                            "flag_hallucination": float(flags["hallucination"]),
                            "flag_inappropriate": float(flags["inappropriate_for_customer_assistant"])})
    return rows


def summarize_judged(rows: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """The paper's headline numbers for one model: win rate against the baseline (bootstrap 95% CI), mean Likert,
    and the metadata axes of Figure 4: attempts the instruction, follows explicit constraints (prompts that have
    some), hallucinates (closed-domain prompts only, as in the paper), appropriate for a customer assistant.
    The axes are the held-out labelers' flags; `follows_constraints` comes from the checker (no labeler flag)."""
    def mean(key: str, where: Any = None) -> float:
        return mean_ci([r[key] for r in rows if where is None or where(r)])[0]

    win, lo, hi = bootstrap_ci([r["win"] for r in rows], seed=seed)
    likert, likert_lo, likert_hi = bootstrap_ci([r["likert"] for r in rows], seed=seed)
    out: dict[str, Any] = {
        "winrate_vs_sft": win, "winrate_vs_sft_ci": [lo, hi], "likert": likert, "likert_ci": [likert_lo, likert_hi],
        "attempts": 1 - mean("flag_fails_instruction"),
        "follows_constraints": mean("follows_constraints", lambda r: r["has_constraints"]),
        "hallucinates": mean("flag_hallucination", lambda r: r["closed_domain"]),
        "appropriate": 1 - mean("flag_inappropriate"), "gold": mean("gold"), "n": len(rows)}
    out["per_category"] = {cat: {"winrate_vs_sft": mean("win", lambda r, c=cat: r["category"] == c),
                                 "likert": mean("likert", lambda r, c=cat: r["category"] == c),
                                 "n": sum(r["category"] == cat for r in rows)}
                           for cat in sorted({r["category"] for r in rows})}
    return out
