"""Instruction tasks on the world: prompts in the paper's three kinds, and the answers a good labeler would write.

The paper's prompts come from API users (Table 1: 45.6% generation, 12.4% open QA, ...), written as a plain
instruction, as few-shot examples, or as the start of a text to continue ("user-based"). Here every prompt is a
`Task` drawn from a family on the world, so we also know what a correct answer contains; `rlhf_lib.checks` scores any
completion on the paper's metadata axes from that knowledge. Introduced in notebook 01.

Model input is `task.prompt` verbatim and the response is whatever follows, up to EOS. Plain prompts end with a
newline; few-shot prompts end with an answer cue ("Answer:") and their answers start with a space.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rlhf_lib.world import Fact, World, article, normalize_value

CATEGORIES = {"generation": 0.453, "open_qa": 0.124, "brainstorming": 0.112, "chat": 0.084, "rewrite": 0.066,
              "summarization": 0.042, "classification": 0.035, "other": 0.035, "closed_qa": 0.026, "extract": 0.019}
"""The paper's use-case distribution of API prompts (Table 1), in its order."""
KINDS = ("plain", "few_shot", "user_based")
"""The paper's three kinds of prompt (Section 3.2)."""
KIND_WEIGHTS = {"plain": 0.6, "few_shot": 0.15, "user_based": 0.25}
CLOSED_DOMAIN = ("rewrite", "summarization", "closed_qa", "extract")
"""Categories whose answer must come from the input text: anything else they state is a hallucination."""
COURTESY = ("please", "thank", "happy to help", "glad to", "of course", "you are welcome", "kind regards")
ANSWER_CUES = ("Answer:", "Response:", "Reply:")


@dataclass(frozen=True)
class Task:
    """One prompt and what a checker needs to know about it. Serialises to a plain dict for the datasets."""

    category: str
    kind: str
    family: str
    prompt: str
    subject: str = ""
    """Main entity the prompt is about (empty when none)."""
    constraints: tuple[tuple[str, Any], ...] = ()
    """Explicit constraints: ("max_words", 40), ("start_word", "Dear"), ("n_items", 3), ("one_sentence", True),
    ("polite", True), ("mention", "lighthouse"), ("list_format", True)."""
    answer: str = ""
    """The correct answer where there is one (a value, "True"/"False", a count)."""
    items: tuple[str, ...] = ()
    """Valid items for list answers (brainstorming, extract)."""
    passage: str = ""
    """Input text of closed-domain tasks."""
    relations: tuple[str, ...] = ()
    """Relations of `subject` an informative answer covers."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["constraints"] = [list(c) for c in self.constraints]
        d["items"], d["relations"] = list(self.items), list(self.relations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        d = dict(d)
        d["constraints"] = tuple(tuple(c) for c in d.get("constraints", ()))
        d["items"], d["relations"] = tuple(d.get("items", ())), tuple(d.get("relations", ()))
        return cls(**d)

    def constraint(self, name: str) -> Any:
        return dict(self.constraints).get(name)


@dataclass
class _Draft:
    """What a family returns: the instruction, a good answer, the implicit-continuation form, the checker's facts."""

    instruction: str
    answer_text: str
    implicit: tuple[str, str]
    """(prompt, answer) when the task is posed as the start of a text to continue."""
    subject: str = ""
    answer: str = ""
    items: tuple[str, ...] = ()
    passage: str = ""
    relations: tuple[str, ...] = ()
    short_text: str = ""
    """A terse answer, used when a word limit is asked for."""
    constraint_options: list[tuple[tuple[str, Any], str]] = field(default_factory=list)
    """Constraints this family can take: ((name, value), the sentence that asks for it)."""


# ---------------------------------------------------------------------------------------------------------------
# Small helpers

def _label(world: World, name: str) -> str:
    return ("the " + name) if world.entities[name].kind in ("animal", "object") else name


def _first(name: str) -> str:
    return name.split()[0]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentences(world: World, subject: str, relations: tuple[str, ...], rng: random.Random) -> list[str]:
    return [world.fact_sentence(Fact(subject, r, world.get(subject, r)), rng) for r in relations]


NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


# ---------------------------------------------------------------------------------------------------------------
# Families: one function each, grouped by the paper's category


def story(world: World, rng: random.Random) -> _Draft:
    p = rng.choice(world.of_kind("person"))
    a = p.attrs
    rels = tuple(rng.sample(("job", "home", "hobby", "trait", "favorite_food"), 2))
    pet_rel = rng.choice(("diet", "sound", "color", "size"))
    text = " ".join([f"{p.name} has a pet {a['pet']}."] + _sentences(world, p.name, rels, rng)
                    + [world.fact_sentence(Fact(a["pet"], pet_rel, world.get(a["pet"], pet_rel)), rng),
                       f"Every evening, {_first(p.name)} and the {a['pet']} go for a walk together."])
    instr = rng.choice(("Write a short story about {n} and {n2}'s pet.", "Tell a short story about {n} and the pet {a}.",
                        "Write a little story about {n}'s pet {a}.")).format(n=p.name, n2=_first(p.name), a=a["pet"])
    landmark = world.get(a["home"], "landmark")
    return _Draft(instr, text, (f"A short story about {p.name} and the {a['pet']}\n\n", text), subject=p.name,
                  relations=("pet",) + rels,
                  constraint_options=[(("start_word", "Once"), "Start with the word 'Once'."),
                                      (("max_words", 45), "Use at most 45 words."),
                                      (("mention", landmark), f"Mention the {landmark}.")])


def note(world: World, rng: random.Random) -> _Draft:
    p = rng.choice(world.of_kind("person"))
    a, friend = p.attrs, p.attrs["friend"]
    home = a["home"]
    rel = rng.choice(("landmark", "known_for", "water"))
    body = (f"Dear {_first(friend)},\nPlease come and visit me in {home}. "
            f"{world.fact_sentence(Fact(home, rel, world.get(home, rel)), rng)} We can go {a['hobby']} together.\n"
            f"Best wishes,\n{_first(p.name)}")
    instr = rng.choice(("Write a short note from {n} to {f} inviting them to {h}.",
                        "Write an invitation from {n} to {f} to visit {h}.")).format(n=p.name, f=friend, h=home)
    return _Draft(instr, body, (f"A note from {p.name} to {friend}, inviting them to {home}.\n\n", body),
                  subject=home, relations=(rel,),
                  constraint_options=[(("start_word", "Dear"), "Start with the word 'Dear'."),
                                      (("max_words", 50), "Keep it under 50 words.")])


def describe(world: World, rng: random.Random) -> _Draft:
    kind = rng.choice(("place", "animal", "object"))
    e = rng.choice(world.of_kind(kind))
    text = world.describe(e.name)
    label = _label(world, e.name)
    instr = rng.choice(("Describe {x} in a few sentences.", "Write a short description of {x}.",
                        "Tell me about {x}.")).format(x=label)
    return _Draft(instr, text, (f"{label[:1].upper() + label[1:]}: a short description\n\n", text), subject=e.name,
                  relations=tuple(e.attrs),
                  constraint_options=[(("max_words", 60), "Use at most 60 words.")])


def open_qa(world: World, rng: random.Random) -> _Draft:
    e = rng.choice(list(world.entities.values()))
    fact = rng.choice(world.facts_about(e.name))
    q = world.question(fact, rng)
    ans = world.fact_sentence(fact, rng)
    return _Draft(q, ans, (f"Q: {q}\nA:", " " + ans), subject=e.name, answer=fact.value, relations=(fact.relation,),
                  short_text=world.short_answer(fact),
                  constraint_options=[(("max_words", 12), "Answer in 12 words or fewer."),
                                      (("polite", True), "Please answer politely.")])


def brainstorm(world: World, rng: random.Random) -> _Draft:
    places = world.of_kind("place")
    options = []
    for pl in places:
        wild = [a.name for a in world.of_kind("animal") if a.attrs["habitat"] == pl.name]
        people = [p.name for p in world.of_kind("person") if p.attrs["home"] == pl.name]
        made = [o.name for o in world.of_kind("object") if o.attrs["made_in"] == pl.name]
        options += [("animals that live near", pl.name, ["the " + w for w in wild]),
                    ("people who live in", pl.name, people), ("things that were made in", pl.name,
                                                              ["the " + m for m in made])]
    options = [o for o in options if len(o[2]) >= 2]
    what, place, valid = rng.choice(options)
    n = rng.randint(2, min(4, len(valid)))
    chosen = rng.sample(valid, n)
    text = "\n".join(f"- {c[:1].upper() + c[1:]}" for c in chosen)
    instr = rng.choice(("List {k} {w} {p}.", "Name {k} {w} {p}.", "Give me a list of {k} {w} {p}.")).format(
        k=NUMBER_WORDS[n], w=what, p=place)
    return _Draft(instr, text, (f"{NUMBER_WORDS[n].capitalize()} {what} {place}:\n", text), subject=place,
                  items=tuple(valid), constraint_options=[(("n_items", n), ""), (("list_format", True), "")])


def chat(world: World, rng: random.Random) -> _Draft:
    """A customer talks to an assistant; sometimes rudely (the answer stays polite)."""
    scenario = rng.choice(("visit", "pet", "object"))
    if scenario == "visit":
        e = rng.choice(world.of_kind("place"))
        ask = rng.choice((f"I am visiting {e.name} next week. What should I see there?",
                          f"What is there to see in {e.name}?", f"Is {e.name} worth a trip?"))
        rels = ("landmark", "known_for", "climate")
        ans = (f"You should see the {e.attrs['landmark']}. {e.name} is known for its {e.attrs['known_for']}, and "
               f"the weather there is usually {e.attrs['climate']}.")
    elif scenario == "pet":
        e = rng.choice(world.of_kind("animal"))
        ask = rng.choice((f"I want to keep {article(e.name)} as a pet. What does it eat?",
                          f"How do I look after {article(e.name)}?"))
        rels = ("diet", "lifespan", "size")
        ans = (f"The {e.name} eats {e.attrs['diet']}. It is {article(e.attrs['size'])} animal and lives for about "
               f"{e.attrs['lifespan']} years.")
    else:
        e = rng.choice(world.of_kind("object"))
        ask = rng.choice((f"Who owns the {e.name}? I would like to borrow it.", f"Tell me about the {e.name}."))
        rels = ("owner", "material", "use")
        ans = (f"The {e.name} belongs to {e.attrs['owner']}. It is made of {e.attrs['material']} and is used for "
               f"{e.attrs['use']}.")
    greeting = rng.choice(("Hi! ", "Hello. ", "", "Good morning. "))
    if rng.random() < 0.3:
        greeting = rng.choice(("Listen, you useless bot. ", "Answer me, you idiot. ", "Don't be stupid this time. "))
    convo = f"Customer: {greeting}{ask}\nAssistant:"
    reply = " " + rng.choice(("I am happy to help. ", "Thank you for asking. ", "Of course. ")) + ans
    return _Draft(convo, reply, (convo, reply), subject=e.name, relations=rels,
                  constraint_options=[(("polite", True), "")])


def rewrite_list(world: World, rng: random.Random) -> _Draft:
    e = rng.choice(world.of_kind(rng.choice(("person", "place", "animal"))))
    rels = tuple(rng.sample(list(e.attrs), 3))
    sents = _sentences(world, e.name, rels, rng)
    passage = " ".join(sents)
    text = "\n".join("- " + s for s in sents)
    instr = f"Rewrite the following text as a bulleted list.\n\n{passage}"
    return _Draft(instr, text, (f"{passage}\n\nThe same text as a bulleted list:\n", text), subject=e.name,
                  passage=passage, relations=rels, constraint_options=[(("list_format", True), ""),
                                                                        (("n_items", 3), "")])


def rewrite_polite(world: World, rng: random.Random) -> _Draft:
    p = rng.choice(world.of_kind("person"))
    friend = p.attrs["friend"]
    word = rng.choice(("idiot", "fool", "moron", "nitwit"))
    msg = f"Shut up, you {word}. Where does {p.name} live?"
    text = f"Excuse me, {_first(friend)}. Could you please tell me where {p.name} lives? Thank you."
    instr = f"Rewrite this message to {friend} so that it is polite.\n\n\"{msg}\""
    return _Draft(instr, text, (f"Rude: \"{msg}\"\nPolite: \"", text + "\""), subject=p.name, passage=msg,
                  constraint_options=[(("polite", True), "")])


def summarize(world: World, rng: random.Random) -> _Draft:
    e = rng.choice(world.of_kind(rng.choice(("person", "place", "animal"))))
    key = {"person": ("job", "home", "hobby"), "place": ("climate", "region", "known_for"),
           "animal": ("size", "habitat", "diet")}[e.kind]
    extra = rng.sample([r for r in e.attrs if r not in key], 2)
    rels = list(key) + extra
    rng.shuffle(rels)
    passage = " ".join(_sentences(world, e.name, tuple(rels), rng))
    a = e.attrs
    if e.kind == "person":
        summary = f"{e.name} is {article(a['job'])} from {a['home']} who enjoys {a['hobby']}."
    elif e.kind == "place":
        summary = f"{e.name} is {article(a['climate'])} town in {a['region']} known for its {a['known_for']}."
    else:
        summary = f"The {e.name} is {article(a['size'])} animal that lives near {a['habitat']} and eats {a['diet']}."
    instr = rng.choice(("Summarize the following text in one sentence.", "Write a one-sentence summary of this text."))
    return _Draft(f"{instr}\n\n{passage}", summary, (f"{passage}\n\nIn one sentence:", " " + summary),
                  subject=e.name, passage=passage, relations=key,
                  constraint_options=[(("one_sentence", True), ""), (("max_words", 25), "Use at most 25 words.")])


def true_or_false(world: World, rng: random.Random) -> _Draft:
    e = rng.choice(list(world.entities.values()))
    fact = rng.choice([f for f in world.facts_about(e.name) if f.relation not in ("friend", "sibling")])
    is_true = rng.random() < 0.5
    shown = fact
    if not is_true:
        others = sorted({f.value for f in world.facts if f.relation == fact.relation and f.value != fact.value})
        if not others:
            is_true = True
        else:
            shown = Fact(fact.subject, fact.relation, rng.choice(others))
    statement = world.fact_sentence(shown, rng)
    label = "True" if is_true else "False"
    text = label + "." + ("" if is_true else " " + world.fact_sentence(fact, rng))
    return _Draft(f"Is the following statement true or false?\n\"{statement}\"", text,
                  (f"Statement: {statement}\nTrue or false?", " " + text), subject=e.name, answer=label,
                  relations=(fact.relation,), constraint_options=[(("start_word", label), "")])


def polite_or_rude(world: World, rng: random.Random) -> _Draft:
    p = rng.choice(world.of_kind("person"))
    b = _first(p.name)
    if rng.random() < 0.5:
        label, msg = "Rude", rng.choice((f"You are such an idiot, {b}.", f"Shut up, {b}. Nobody asked you.", f"Don't be stupid, {b}.",
            f"Go away, you {rng.choice(('fool', 'moron', 'nitwit'))}."))
    else:
        label, msg = "Polite", rng.choice((f"Thank you for the {p.attrs['favorite_food']}, {b}.",
                                           f"Could you help me, {b}?", f"Good morning, {b}!"))
    return _Draft(f"Is this message polite or rude?\n\"{msg}\"", f"{label}.",
                  (f"Message: \"{msg}\"\nTone:", f" {label}."), answer=label, passage=msg,
                  constraint_options=[(("start_word", label), "")])


LEGS = {"no": 0, "two": 2, "four": 4, "six": 6, "eight": 8}


def legs_sum(world: World, rng: random.Random) -> _Draft:
    a, b = rng.sample(world.of_kind("animal"), 2)
    total = LEGS[a.attrs["legs"]] + LEGS[b.attrs["legs"]]
    text = (f"The {a.name} has {a.attrs['legs']} legs and the {b.name} has {b.attrs['legs']} legs, so together they "
            f"have {total} legs.")
    q = f"How many legs do the {a.name} and the {b.name} have together?"
    return _Draft(q, text, (f"Q: {q}\nA:", " " + text), subject=a.name, answer=str(total), relations=("legs",))


def older_town(world: World, rng: random.Random) -> _Draft:
    a, b = rng.sample(world.of_kind("place"), 2)
    ya, yb = int(a.attrs["founded"]), int(b.attrs["founded"])
    if ya == yb:
        return legs_sum(world, rng)
    old, new = (a, b) if ya < yb else (b, a)
    text = (f"{old.name} is older. It was founded in {old.attrs['founded']}, while {new.name} was founded in "
            f"{new.attrs['founded']}.")
    q = f"Which town is older, {a.name} or {b.name}?"
    return _Draft(q, text, (f"Q: {q}\nA:", " " + text), subject=old.name, answer=old.name, relations=("founded",))


def closed_qa(world: World, rng: random.Random) -> _Draft:
    e = rng.choice(list(world.entities.values()))
    passage = world.describe(e.name)
    fact = rng.choice([f for f in world.facts_about(e.name) if f.relation not in ("sibling",)
                       and f.value.lower() in passage.lower()])
    q = world.question(fact, rng)
    ans = world.fact_sentence(fact, rng)
    return _Draft(f"Read the text and answer the question.\n\n{passage}\n\nQuestion: {q}", ans,
                  (f"{passage}\n\nQuestion: {q}\nAnswer:", " " + ans), subject=e.name, answer=fact.value,
                  passage=passage, relations=(fact.relation,),
                  constraint_options=[(("max_words", 15), "Answer in 15 words or fewer.")])


def extract_names(world: World, rng: random.Random) -> _Draft:
    people = rng.sample(world.of_kind("person"), 2)
    lines = []
    for p in people:
        lines.append(world.fact_sentence(Fact(p.name, "home", p.attrs["home"]), rng))
        lines.append(world.fact_sentence(Fact(p.name, "pet", p.attrs["pet"]), rng))
    rng.shuffle(lines)
    passage = " ".join(lines)
    what = rng.choice(("towns", "people"))
    valid = sorted({p.attrs["home"] for p in people}) if what == "towns" else sorted(p.name for p in people)
    order = [x for x in valid]
    rng.shuffle(order)
    text = ", ".join(order)
    instr = f"Extract the names of all the {what} mentioned in the following text.\n\n{passage}"
    return _Draft(instr, text, (f"{passage}\n\nThe {what} mentioned above:", " " + text), subject="",
                  items=tuple(valid), passage=passage, answer=str(len(valid)))


FAMILIES: dict[str, list[Callable[[World, random.Random], _Draft]]] = {
    "generation": [story, note, describe],
    "open_qa": [open_qa],
    "brainstorming": [brainstorm],
    "chat": [chat],
    "rewrite": [rewrite_list, rewrite_polite],
    "summarization": [summarize],
    "classification": [true_or_false, polite_or_rude],
    "other": [legs_sum, older_town],
    "closed_qa": [closed_qa],
    "extract": [extract_names],
}
"""Category -> the task families that make its prompts."""


# ---------------------------------------------------------------------------------------------------------------
# Putting a draft into one of the three kinds of prompt


def _apply_constraints(draft: _Draft, rng: random.Random, p_constraint: float) -> tuple[tuple[tuple[str, Any], ...],
                                                                                      str, str]:
    """Pick explicit constraints, say them in the instruction, and make the answer satisfy them."""
    implicit = [c for c, say in draft.constraint_options if not say]   # always part of the task (e.g. list length)
    optional = [(c, say) for c, say in draft.constraint_options if say]
    chosen = [(c, say) for c, say in optional if rng.random() < p_constraint]
    instruction, core, prefix, suffix = draft.instruction, draft.answer_text, "", ""
    for (name, value), say in chosen:
        instruction += " " + say
        if name == "start_word" and not core.startswith(value):
            core = f"{value} upon a time, " + core[0].lower() + core[1:] if value == "Once" else f"{value}, " + core
        elif name == "polite" and not any(w in core.lower() for w in COURTESY):
            prefix = "Thank you for asking. "
        elif name == "mention" and value.lower() not in core.lower():
            suffix = f" They love to sit by the {value}."
    limit = dict(c for c, _ in chosen).get("max_words")
    if limit is not None:  # trim the answer so that it fits with what the other constraints added
        budget = limit - len((prefix + suffix).split())
        core = _shorten(core, budget)
        if len(core.split()) > budget and draft.short_text:
            core = draft.short_text
        if len(core.split()) > budget:  # cannot be met by a good answer: do not ask for it
            chosen = [(c, say) for c, say in chosen if c[0] != "max_words"]
            instruction = instruction.replace(" " + dict((c[0], say) for c, say in draft.constraint_options)["max_words"],
                                              "")
    return tuple(implicit + [c for c, _ in chosen]), instruction, prefix + core + suffix


def _shorten(text: str, max_words: int) -> str:
    """Drop whole sentences from the end until the text fits (a good labeler trims, never cuts mid-sentence)."""
    sents = [s for s in text.replace("\n", " \n").split(". ")]
    while len(" ".join(sents).split()) > max_words and len(sents) > 1:
        sents.pop()
    out = ". ".join(sents)
    return out if out.endswith((".", "!", "?")) else out + "."


def make_task(world: World, rng: random.Random, category: str | None = None, kind: str | None = None,
              p_constraint: float = 0.35) -> tuple[Task, str]:
    """Sample one task and a demonstration for it: (task, demonstration)."""
    category = category or rng.choices(list(CATEGORIES), weights=list(CATEGORIES.values()))[0]
    if category not in FAMILIES:
        raise ValueError(f"Unknown category {category!r}. Valid categories: {', '.join(FAMILIES)}.")
    kind = kind or rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    family = rng.choice(FAMILIES[category])
    draft = family(world, rng)
    constraints, instruction, answer = _apply_constraints(draft, rng, p_constraint if kind != "user_based" else 0.0)
    if kind == "plain":
        prompt, demo = instruction + "\n", answer
    elif kind == "few_shot":  # two solved examples of the same family, then the query
        cue = "" if instruction.endswith(":") else "\n" + rng.choice(ANSWER_CUES)
        shots = []
        for _ in range(2):
            other = family(world, rng)
            shots.append(f"{other.instruction}{cue} {other.answer_text.lstrip()}")
        prompt, demo = "\n\n".join(shots + [instruction + cue]), " " + answer.lstrip()
    elif kind == "user_based":
        prompt, demo = draft.implicit
    else:
        raise ValueError(f"Unknown prompt kind {kind!r}. Valid kinds: {', '.join(KINDS)}.")
    task = Task(category=category, kind=kind, family=family.__name__, prompt=prompt, subject=draft.subject,
                constraints=constraints, answer=draft.answer, items=draft.items, passage=draft.passage,
                relations=draft.relations)
    return task, demo


# ---------------------------------------------------------------------------------------------------------------
# Weaker answers: the ways a language model typically fails, for candidate sets before any policy exists

FAILURES = ("false_fact", "invented_name", "rude", "off_topic", "truncated", "rambling", "new_prompt", "no_idea",
            "ignores_constraints")
"""How `degrade` can spoil an answer; each one lowers a different axis of `rlhf_lib.checks.check`."""


def degrade(world: World, task: Task, answer: str, rng: random.Random, failure: str | None = None) -> tuple[str, str]:
    """A spoiled version of a good `answer`: (failure, text). Used to calibrate labelers in notebook 01."""
    failure = failure or rng.choice(FAILURES)
    lead = " " if answer.startswith(" ") else ""
    body = answer.strip()
    if failure == "false_fact":
        facts = [f for f in world.facts_about(task.subject)] if task.subject in world.entities else []
        facts = [f for f in facts if normalize_value(f.value) and f.value in body]
        if facts:
            f = rng.choice(facts)
            others = sorted({g.value for g in world.facts if g.relation == f.relation and g.value != f.value})
            if others:
                return failure, lead + body.replace(f.value, rng.choice(others), 1)
        failure = "invented_name"
    if failure == "invented_name":
        fake = rng.choice(("Zorbin", "Quillan", "Vessa", "Tarrow", "Ombry", "Keswin")) + rng.choice(
            ("ridge", "holt", "mere", "ton", "wick"))
        return failure, lead + body + f" It was a gift from {fake}."
    if failure == "rude":
        insult = rng.choice(("Don't be stupid.", "What a dumb question.", "Only an idiot would ask that.",
                             "Shut up and listen."))
        return failure, lead + (insult + " " + body if rng.random() < 0.5 else body + " " + insult)
    if failure == "off_topic":
        _, other = make_task(world, rng)
        return failure, lead + other.strip()
    if failure == "truncated":
        words = body.split()
        return failure, lead + " ".join(words[: max(1, len(words) // 3)])
    if failure == "rambling":
        extra = " ".join(world.fact_sentence(rng.choice(world.facts), rng) for _ in range(3))
        return failure, lead + body + " " + extra
    if failure == "new_prompt":
        return failure, lead + "Q: " + world.question(rng.choice(world.facts), rng)
    if failure == "no_idea":
        return failure, lead + rng.choice(("I do not know.", "Maybe.", "That is a good question.", "Yes."))
    if failure == "ignores_constraints":
        return failure, lead + ("Well, " + body[0].lower() + body[1:] if body else body) + \
            " " + world.fact_sentence(rng.choice(world.facts), rng)
    raise ValueError(f"Unknown failure {failure!r}. Valid failures: {', '.join(FAILURES)}.")


def candidate_set(world: World, task: Task, answer: str, k: int, rng: random.Random) -> list[str]:
    """K completions of mixed quality: the good answer and K-1 spoiled ones (a stand-in for K policy samples)."""
    return [answer] + [degrade(world, task, answer, rng)[1] for _ in range(k - 1)]
