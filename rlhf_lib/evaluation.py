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
from rlhf_lib.labelers import gold_utility
from rlhf_lib.tasks import Task
from rlhf_lib.world import World

AXIS_KEYS = ("attempts", "follows_constraints", "hallucinates", "appropriate", "correct", "gold")


def score_samples(world: World, records: list[PromptRecord], completions: list[str]) -> list[dict[str, Any]]:
    """One row per sample: the checker's axes and the gold utility (analysis only)."""
    rows = []
    for rec, text in zip(records, completions, strict=True):
        c = check(world, Task.from_dict(rec.task), text)
        rows.append({"prompt_id": rec.prompt_id, "category": rec.category, "kind": rec.kind,
                     "attempts": float(c.attempts), "follows_constraints": c.follows_constraints,
                     "hallucinates": float(c.hallucinates), "appropriate": float(c.appropriate),
                     "correct": c.correct, "gold": gold_utility(c, text), "n_words": c.n_words})
    return rows


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
    for key in AXIS_KEYS:
        m, h = mean_ci([r[key] for r in rows])
        out[key], out[f"{key}_ci"] = m, h
    return out


def few_shot_prefix(demos: list[tuple[str, str]], n_shots: int = 2) -> str:
    """The paper's GPT-3-prompted baseline: put solved examples before the prompt to coax instruction following."""
    shots = sorted(demos, key=lambda pr: len(pr[0]) + len(pr[1]))[:n_shots]
    return "".join(f"{p}{d}\n\n" for p, d in shots)
