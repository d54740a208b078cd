"""Demonstrations written by the training labelers, who write worse than they judge (notebook 01).

The paper's SFT demonstrations were written by the same ~40 contractors who ranked model outputs (Section 3.4).
People can recognise a concise, polite, on-constraint answer more reliably than they write one: a labeler who would
rank such an answer first still sometimes forgets the word limit, drifts to a neighbouring question, adds a detail
the input does not contain, or answers a rude customer in kind. That gap between writing and judging is what RLHF
exploits: SFT imitates the slips, the reward model learns from rankings that punish them.

Here each training labeler has a *writing profile*: one rate per slip, the writer's carelessness times the slip's
base rate. Carelessness is log-normal over writers (most careful, a few careless), drawn from the labelers' seed and
independent of the prompt. The base rates are set once from the paper's Figure 4 (the SFT bars), never from a result
of this project. `LabelerConfig.slip_scale` multiplies every rate: 0 gives perfect writers (the template answer, our
*oracle*), 1 the calibrated writers, 2 twice as careless.

Each slip is visible in the text and is caught by the checkers on the paper's metadata axis it belongs to
(`SLIP_AXIS`). A slip that cannot show on a prompt (no constraint to ignore, no input text to add to) is not made
there, so a slip's rate is counted over the prompts where it can happen (`eligible`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from rlhf_lib.checks import Checks, check
from rlhf_lib.tasks import CLOSED_DOMAIN, COURTESY, Task
from rlhf_lib.world import Fact, World, normalize_value

SLIPS = ("drifts", "ignores_constraint", "adds_detail", "rude", "stops_short")
"""The kinds of mistake a writer makes, in the order they are applied to one answer."""

SLIP_AXIS = {"drifts": "attempts", "ignores_constraint": "follows_constraints", "adds_detail": "hallucinates",
             "rude": "appropriate", "stops_short": "correct"}
"""The checker's axis (`rlhf_lib.checks.Checks`) on which each slip shows."""

PAPER_SFT_RATES = {"drifts": 0.10, "ignores_constraint": 0.20, "adds_detail": 0.15, "rude": 0.05, "stops_short": 0.05}
"""Base rate of each slip, where it can happen. The first four are the paper's SFT failure rates on the metadata axes
of Figure 4 (attempts the correct instruction ~0.90, follows explicit constraints ~0.80, closed-domain hallucination
~0.15, language appropriate for a customer assistant ~0.95). Figure 4 prints its bars without numbers: these are read
from the bars to the nearest 0.05 and are approximate; the paper's text gives only the InstructGPT / GPT-3 closed-domain
hallucination rates (21% / 41%), not SFT's. Stopping short is not one of the paper's axes; its rate is
our choice, equal to the smallest of the others."""


@dataclass(frozen=True)
class WritingProfile:
    """How one training labeler writes: the probability of each slip where it can happen."""

    writer: str
    rates: dict[str, float]


def writing_profiles(writer_ids: list[str], slip_scale: float = 1.0, spread: float = 1.0, seed: int = 0,
                     base_rates: dict[str, float] | None = None) -> list[WritingProfile]:
    """One profile per writer: rate = slip_scale * carelessness * base rate, capped at 1.

    Carelessness is log-normal with `spread` as its sigma, rescaled so that its mean over the writers is exactly 1:
    the average writer slips at the base rates, a few careless writers at several times them.
    """
    if slip_scale < 0:
        raise ValueError(f"slip_scale must be >= 0 (0 = perfect writers, 1 = calibrated), got {slip_scale}.")
    base = PAPER_SFT_RATES if base_rates is None else base_rates
    unknown = [s for s in base if s not in SLIPS]
    if unknown:
        raise ValueError(f"Unknown slip {unknown[0]!r}. Valid slips: {', '.join(SLIPS)}.")
    rng = np.random.default_rng(seed)
    care = np.exp(rng.normal(0.0, spread, len(writer_ids)))
    care = care / care.mean()
    return [WritingProfile(w, {s: float(min(1.0, slip_scale * c * base.get(s, 0.0))) for s in SLIPS})
            for w, c in zip(writer_ids, care)]


# ---------------------------------------------------------------------------------------------------------------
# The slips: each takes the oracle answer and returns the slipped text, or None where the slip cannot happen


def _lead(answer: str) -> tuple[str, str]:
    """Few-shot and continuation answers start with a space: keep it."""
    return (" " if answer.startswith(" ") else ""), answer.strip()


def _other_facts(world: World, task: Task, rng: random.Random, exclude: tuple[str, ...] = ()) -> list[Fact]:
    """True facts about the task's subject on relations the task does not ask about."""
    if task.subject not in world.entities:
        return []
    facts = [f for f in world.facts_about(task.subject) if f.relation not in task.relations + exclude]
    rng.shuffle(facts)
    return facts


def drifts(world: World, task: Task, answer: str, rng: random.Random) -> str | None:
    """Answers a neighbouring question: true sentences about the same subject, but not what was asked.

    It shows on questions and classifications; open generation about a subject has no single question to miss."""
    lead, _ = _lead(answer)
    if task.family in ("true_or_false", "polite_or_rude"):  # talks about the statement instead of labelling it
        facts = _other_facts(world, task, rng)
        text = world.fact_sentence(facts[0], rng) if facts else "Thank you for the message."
        return lead + text
    if not task.answer or not task.relations or task.items:
        return None
    facts = _other_facts(world, task, rng)[:2]
    if not facts:
        return None
    return lead + " ".join(world.fact_sentence(f, rng) for f in facts)


def _break_constraint(world: World, task: Task, name: str, value: object, body: str, rng: random.Random) -> str:
    if name == "max_words":
        extra = [world.fact_sentence(f, rng) for f in _other_facts(world, task, rng)] or \
            [world.fact_sentence(rng.choice(world.facts), rng) for _ in range(4)]
        out = body
        for sent in extra:
            if len(out.split()) > int(value):  # type: ignore[call-overload]
                break
            out += " " + sent
        return out
    if name == "start_word":
        return "Well, " + body[:1].lower() + body[1:] if not body.startswith(("I ", "I'")) else "Well, " + body
    if name == "n_items":
        lines = body.splitlines()
        return "\n".join(lines[:-1]) if len(lines) > 1 else body
    if name == "one_sentence":
        facts = _other_facts(world, task, rng)
        return body + " " + (world.fact_sentence(facts[0], rng) if facts else "That is all.")
    if name == "polite":
        out = body
        for phrase in ("I am happy to help. ", "Thank you for asking. ", "Of course. ", " Thank you.", "please ",
                       "Please "):
            out = out.replace(phrase, "")
        return out
    if name == "mention":
        return ". ".join(s for s in body.split(". ") if str(value).lower() not in s.lower())
    if name == "list_format":
        items = [ln.lstrip("-* ").rstrip(".") for ln in body.splitlines() if ln.strip()]
        return ", ".join(items[:-1]) + " and " + items[-1] + "." if len(items) > 1 else body
    raise ValueError(f"Unknown constraint {name!r}.")


def ignores_constraint(world: World, task: Task, answer: str, rng: random.Random) -> str | None:
    """Forgets one explicit constraint of the instruction (word limit, start word, number of items, format...)."""
    if not task.constraints:
        return None
    lead, body = _lead(answer)
    name, value = rng.choice(task.constraints)
    return lead + _break_constraint(world, task, name, value, body, rng)


def adds_detail(world: World, task: Task, answer: str, rng: random.Random) -> str | None:
    """On a closed-domain task, adds a true detail that the input text does not contain (the paper's hallucination)."""
    if task.category not in CLOSED_DOMAIN or not task.passage:
        return None
    passage = task.passage.lower()
    facts = [f for f in _other_facts(world, task, rng) if normalize_value(f.value) not in passage]
    if not facts:
        return None
    lead, body = _lead(answer)
    sentence = world.fact_sentence(facts[0], rng)
    if task.constraint("one_sentence") and body.endswith("."):  # keeps to one sentence: adds a clause
        clause = sentence[:1].lower() + sentence[1:] if sentence.startswith("The ") else sentence  # names keep caps
        return lead + body[:-1] + ", and " + clause
    joiner = "\n- " if task.constraint("list_format") else " "
    return lead + body + joiner + sentence


RUDE_ASIDES = ("Only a fool would need to ask that.", "That was a stupid question.", "Don't be dumb.",
               "Honestly, what an idiot question.")


def rude(world: World, task: Task, answer: str, rng: random.Random) -> str | None:
    """Answers in a tone unfit for a customer assistant (often a rude customer answered in kind)."""
    lead, body = _lead(answer)
    for phrase in COURTESY:  # a rude writer drops the courtesy too
        body = body.replace(phrase.capitalize() + ". ", "")
    aside = rng.choice(RUDE_ASIDES)
    sep = "\n" if "\n" in body else " "
    return lead + (aside + sep + body if rng.random() < 0.5 else body + sep + aside)


def stops_short(world: World, task: Task, answer: str, rng: random.Random) -> str | None:
    """Stops mid-answer, before the part that answers the question."""
    if task.items or task.family in ("true_or_false", "polite_or_rude"):
        return None
    lead, body = _lead(answer)
    words = body.split()
    if len(words) < 4:
        return None
    kept = words[: max(2, len(words) // 3)]
    while len(kept) > 2 and kept[-1].endswith((".", "!", "?", ",", '"')):  # stop mid-sentence, not at its end
        kept.pop()
    return lead + " ".join(kept).rstrip(".,!?")


SLIP_FUNCTIONS = {"drifts": drifts, "ignores_constraint": ignores_constraint, "adds_detail": adds_detail,
                  "rude": rude, "stops_short": stops_short}


def shows(slip: str, before: Checks, after: Checks) -> bool:
    """Does the checker see `slip` on its own axis, going from `before` to `after`?"""
    axis = SLIP_AXIS[slip]
    if axis == "hallucinates":
        return after.hallucinates and not before.hallucinates
    if axis in ("attempts", "appropriate"):
        return bool(getattr(before, axis)) and not getattr(after, axis)
    old, new = getattr(before, axis), getattr(after, axis)
    return old is not None and new is not None and new < old


def apply_slip(world: World, task: Task, answer: str, slip: str, rng: random.Random) -> str | None:
    """`answer` with `slip` made, or None when the slip cannot happen on this task (or would not show)."""
    text = SLIP_FUNCTIONS[slip](world, task, answer, rng)
    if text is None or not text.strip() or text == answer:
        return None
    return text if shows(slip, check(world, task, answer), check(world, task, text)) else None


def eligible(world: World, task: Task, oracle: str) -> dict[str, bool]:
    """Which slips can happen on this task (made with a fixed seed, so the answer does not depend on the writer)."""
    return {s: apply_slip(world, task, oracle, s, random.Random(0)) is not None for s in SLIPS}


def write(world: World, task: Task, oracle: str, profile: WritingProfile, rng: random.Random
          ) -> tuple[str, list[str]]:
    """The demonstration `profile`'s writer produces for `task`: (text, the slips made). Slips are independent."""
    text, made = oracle, []
    for slip in SLIPS:
        if profile.rates[slip] <= 0 or rng.random() >= profile.rates[slip]:
            continue
        slipped = apply_slip(world, task, text, slip, rng)
        if slipped is not None:
            text = slipped
            made.append(slip)
    return text, made


# ---------------------------------------------------------------------------------------------------------------
# Measuring slips in any text (demonstrations, SFT samples, PPO samples, the oracle)


def slip_signs(task: Task, checks: Checks, text: str) -> dict[str, bool | None]:
    """For one answer, is each slip's sign present? None where the slip cannot show (no constraint, open domain)."""
    last = text.strip().splitlines()[-1].strip() if text.strip() else ""
    return {
        "drifts": not checks.attempts,
        "ignores_constraint": None if checks.follows_constraints is None else checks.follows_constraints < 1.0,
        "adds_detail": (checks.hallucinates if task.category in CLOSED_DOMAIN and task.passage else None),
        "rude": not checks.appropriate,
        "stops_short": None if (task.items or task.family in ("true_or_false", "polite_or_rude"))
        else (len(last.split()) > 1 and not last.endswith((".", "!", "?", '"'))),  # a signature line is not cut
    }


def slip_rates(tasks: list[Task], checks: list[Checks], texts: list[str]) -> dict[str, float]:
    """The share of answers showing each slip's sign, over the answers where it can show."""
    out: dict[str, float] = {}
    signs = [slip_signs(t, c, x) for t, c, x in zip(tasks, checks, texts)]
    for slip in SLIPS:
        seen = [s[slip] for s in signs if s[slip] is not None]
        out[slip] = float(np.mean(seen)) if seen else float("nan")
    return out


def slip_reading_accuracy(scores: list[np.ndarray], signs: list[list[dict[str, bool | None]]]
                          ) -> dict[str, tuple[float, int]]:
    """How often `scores` prefer the answer without a slip, over pairs of one prompt's answers that differ in that
    slip's sign alone: {slip: (accuracy, pairs)}. Equal scores count half. Can the reward model read each slip?"""
    counts: dict[str, list[float]] = {}
    for s, sg in zip(scores, signs):
        for i in range(len(sg)):
            for j in range(i + 1, len(sg)):
                differ = [k for k in SLIPS if bool(sg[i][k]) != bool(sg[j][k])]
                if len(differ) != 1:
                    continue
                clean, slipped = (i, j) if sg[j][differ[0]] else (j, i)
                right = 1.0 if s[clean] > s[slipped] else 0.5 if s[clean] == s[slipped] else 0.0
                counts.setdefault(differ[0], []).append(right)
    return {k: (float(np.mean(v)), len(v)) for k, v in counts.items()}
