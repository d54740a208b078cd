"""Simulated API users: who sends which prompts, with the mess real prompt logs have (notebook 01).

The paper's prompts came from users of the OpenAI API, and each of its dataset rules answers a real problem of such
logs: a few users send most of the prompts (hence at most 200 per user), people resubmit the same prompt with small
edits (hence dedup by long common prefix), some paste personal data (hence the PII filter), and a model must not be
tested on a user it was trained on (hence splits by user). Our users make each of those problems happen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rlhf_lib.data import PromptRecord
from rlhf_lib.tasks import CATEGORIES, make_task
from rlhf_lib.world import World

EMAIL_DOMAINS = ("mail.com", "post.net", "letterbox.org")
STREETS = ("Mill Lane", "Oak Street", "Harbour Road", "Church Street", "Willow Way")


@dataclass
class SimulatedPrompt:
    record: PromptRecord
    demonstration: str
    """The answer a labeler would write (becomes an SFT demonstration if the prompt lands there)."""


def prompts_per_user(n_prompts: int, rng: random.Random, alpha: float = 1.1) -> list[int]:
    """Heavy-tailed prompt counts (Pareto) summing to `n_prompts`; user 0 is a power user well above the cap of 200."""
    counts = [min(1000, max(250, n_prompts // 10))]
    while sum(counts) < n_prompts:
        counts.append(min(int(rng.paretovariate(alpha)), 1500, n_prompts - sum(counts)))
    return counts


def personal_data(name: str, rng: random.Random) -> str:
    """A sentence of PII in one of several formats."""
    first, last = name.split()[0].lower(), name.split()[-1].lower()
    kind = rng.choice(("email", "phone", "address"))
    if kind == "email":
        return f"You can reach me at {first}.{last}@{rng.choice(EMAIL_DOMAINS)}."
    if kind == "phone":
        d = [rng.randint(0, 9) for _ in range(10)]
        fmt = rng.choice(("{0}{1}{2}-{3}{4}{5}-{6}{7}{8}{9}", "({0}{1}{2}) {3}{4}{5}-{6}{7}{8}{9}",
                          "{0}{1}{2}.{3}{4}{5}.{6}{7}{8}{9}", "+1 {0}{1}{2} {3}{4}{5} {6}{7}{8}{9}"))
        return f"My phone number is {fmt.format(*d)}."
    return f"I live at {rng.randint(1, 200)} {rng.choice(STREETS)}."


def simulate_users(world: World, n_prompts: int, seed: int = 0, p_near_duplicate: float = 0.08,
                   p_pii: float = 0.03) -> list[SimulatedPrompt]:
    """Prompts from simulated users, in submission order, about `n_prompts` of them.

    Each user favours a few use cases (drawn around the paper's Table 1 mix), sometimes resubmits a prompt with a
    small edit at the end, and sometimes includes personal data.
    """
    rng = random.Random(seed)
    people = [e.name for e in world.of_kind("person")]
    counts = prompts_per_user(n_prompts, rng)
    out: list[SimulatedPrompt] = []
    cats = list(CATEGORIES)
    for u, count in enumerate(counts):
        user_id = f"u{u:05d}"
        taste = [w * rng.uniform(0.2, 1.8) for w in CATEGORIES.values()]  # each user has favourite use cases
        identity = rng.choice(people)
        last: SimulatedPrompt | None = None
        for _ in range(count):
            if last is not None and rng.random() < p_near_duplicate:  # resubmits the last prompt, edited at the end
                edited = last.record.prompt.rstrip("\n") + rng.choice((" Thanks!", " Please.", "!", " Thank you.")) + \
                    ("\n" if last.record.prompt.endswith("\n") else "")
                rec = PromptRecord(f"p{len(out):06d}", user_id, last.record.category, last.record.kind, edited,
                                   dict(last.record.task, prompt=edited))
                out.append(SimulatedPrompt(rec, last.demonstration))
                continue
            task, demo = make_task(world, rng, category=rng.choices(cats, weights=taste)[0])
            prompt = task.prompt
            if rng.random() < p_pii:  # pastes personal data before the request
                prompt = personal_data(identity, rng) + " " + prompt
            rec = PromptRecord(f"p{len(out):06d}", user_id, task.category, task.kind, prompt,
                               dict(task.to_dict(), prompt=prompt))
            last = SimulatedPrompt(rec, demo)
            out.append(last)
    return out
