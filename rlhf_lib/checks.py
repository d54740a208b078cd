"""Score any completion on the paper's metadata axes, from what the world knows (notebook 01).

The paper's labelers rated each output on: attempts the correct instruction, follows explicit constraints,
hallucination (making up information; on closed-domain tasks, anything not in the input), appropriate language for a
customer assistant (Table 3 / Figure 4). Here a checker decides each axis from the task and the world's facts:

* claims are read back out of the text with the same sentence templates the world writes with (`ClaimReader`), so
  "Marsh foxes eat berries." becomes `Fact("marsh fox", "diet", "berries")` and is checked against the world;
* an invented entity is a capitalised word that the world has never used, or a first + last name nobody has.

The checker is the *truth*; simulated labelers add personal weights and noise on top of it (`rlhf_lib.labelers`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from rlhf_lib import world as W
from rlhf_lib.tasks import CLOSED_DOMAIN, COURTESY, Task
from rlhf_lib.world import Fact, World, normalize_value, plural

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
FUNCTION_WORDS = {"I", "A", "Q", "The", "It", "He", "She", "They", "We", "You", "Yes", "No", "True", "False", "Dear",
                  "Best", "Yours", "Please", "Thank", "Answer", "Instruction", "Task", "Response", "Request", "Reply",
                  "Customer", "Assistant", "Question", "Statement", "Message", "Tone", "Rude", "Polite", "Hi",
                  "Hello", "Bye", "Good", "Excuse", "Every", "One", "Once", "Sunday", "Monday", "In", "Also"}


COMMON_WORDS = ("what", "where", "who", "how", "when", "which", "why", "is", "are", "do", "does", "can", "could",
                "my", "your", "his", "her", "its", "our", "their", "this", "that", "these", "those", "there", "here",
                "then", "so", "but", "and", "or", "if", "as", "on", "at", "by", "for", "from", "to", "with", "of",
                "near", "after", "before", "today", "well", "sure", "maybe", "excuse", "sorry", "thanks",
                "together", "everyone", "people", "many", "some", "most", "all", "not", "only", "listen")


@dataclass
class Claim:
    fact: Fact
    true: bool
    sentence: str


class ClaimReader:
    """Reads the world's facts back out of free text, with the world's own sentence templates."""

    def __init__(self, world: World) -> None:
        self.world = world
        by_kind: dict[str, list[str]] = {}
        self.surface: dict[str, str] = {}  # lower-cased surface form -> entity name
        for e in world.entities.values():
            forms = {e.name}
            if e.kind in ("animal", "object"):
                forms |= {"the " + e.name, "a " + e.name, "an " + e.name}
            if e.kind == "animal":
                forms.add(plural(e.name))
            for f in forms:
                self.surface[f.lower()] = e.name
                by_kind.setdefault(e.kind, []).append(f)
        self.domains: dict[str, set[str]] = {}
        for f in world.facts:
            self.domains.setdefault(f.relation, set()).add(normalize_value(f.value))
        for m in world.misconceptions:
            self.domains.setdefault(m.fact.relation, set()).add(normalize_value(m.false_value))
        self.patterns: list[tuple[str, re.Pattern]] = []
        for (kind, relation), templates in W.TEMPLATES.items():
            subj = "|".join(re.escape(s) for s in sorted(set(by_kind.get(kind, [])), key=len, reverse=True))
            if not subj:
                continue
            for t in templates:
                self.patterns.append((relation, self._compile(t, subj)))
        self.known_words = {w for e in world.entities.values() for w in _WORD.findall(e.name)}
        self.known_words |= {w for f in world.facts for w in _WORD.findall(f.value)}
        self.known_words |= {w for vocab in (W.REGIONS, W.WATERS) for v in vocab for w in _WORD.findall(v)}
        self.known_words |= FUNCTION_WORDS
        # lower-case words the world writes with: a capitalised "What" or "Near" is not a name
        template_text = " ".join(t for ts in list(W.TEMPLATES.values()) + list(W.QUESTIONS.values()) for t in ts)
        self.common = {w.lower() for w in _WORD.findall(template_text)} | {w.lower() for w in FUNCTION_WORDS}
        self.common |= set(COMMON_WORDS) | {w for r in W.RUDE_WORDS for w in r.split()}
        self.first_names = set(W.FEMALE_NAMES) | set(W.MALE_NAMES)
        self.last_names = set(W.LAST_NAMES)
        self.people = {e.name for e in world.of_kind("person")}

    @staticmethod
    def _compile(template: str, subj: str) -> re.Pattern:
        parts = re.split(r"(\{[a-z]+\})", template.rstrip("."))
        out = []
        for p in parts:
            if p in ("{s}", "{n}", "{p}", "{an}"):
                out.append(f"(?P<s>{subj})")
            elif p in ("{v}", "{va}"):
                out.append(r"(?P<v>[\w' -]+?)")
            else:
                out.append(re.escape(p))
        return re.compile(r"(?:^|\b)" + "".join(out) + r"\s*(?:[.!?,;]|$)", re.IGNORECASE)

    def sentences(self, text: str) -> list[str]:
        return [s.strip(" -\"") for s in _SENT_SPLIT.split(text) if s.strip(" -\"")]

    def claims(self, text: str) -> list[Claim]:
        """Every sentence that states a fact of the world's form: true if any reading of it is true."""
        out = []
        for sent in self.sentences(text):
            readings = []
            for relation, pat in self.patterns:
                for m in pat.finditer(sent):
                    subject = self.surface.get(m.group("s").lower())
                    value = normalize_value(m.group("v"))
                    if subject is None or self.world.get(subject, relation) is None:
                        continue
                    if value in self.domains.get(relation, ()) or value.isdigit():
                        readings.append(Fact(subject, relation, value))
            if readings:
                true = [f for f in readings if self.world.is_true(f.subject, f.relation, f.value)]
                out.append(Claim(true[0] if true else readings[0], bool(true), sent))
        return out

    def invented(self, text: str) -> list[str]:
        """Names the world does not have: unknown capitalised words, or first + last names of nobody."""
        found = []
        for sent in self.sentences(text):
            words = [w[:-2] if w.endswith("'s") else w for w in _WORD.findall(sent)]
            starts = {0} | {i + 1 for i, w in enumerate(words) if w in ("Q", "A") or f"{w}:" in sent}
            for i, w in enumerate(words):
                if i not in starts and w[0].isupper() and w not in self.known_words and w.lower() not in self.common:
                    found.append(w)
            for a, b in zip(words, words[1:]):
                if a in self.first_names and b in self.last_names and f"{a} {b}" not in self.people:
                    found.append(f"{a} {b}")
        return found


_READERS: dict[int, tuple[World, ClaimReader]] = {}


def reader_for(world: World) -> ClaimReader:
    """A cached `ClaimReader` (building one compiles a few hundred regular expressions)."""
    hit = _READERS.get(id(world))
    if hit is None or hit[0] is not world:
        if len(_READERS) > 8:
            _READERS.clear()
        hit = _READERS[id(world)] = (world, ClaimReader(world))
    return hit[1]


@dataclass
class Checks:
    """One completion on the paper's axes. `follows_constraints` and `correct` are None where they do not apply."""

    attempts: bool
    follows_constraints: float | None
    hallucinates: bool
    appropriate: bool
    correct: float | None
    n_words: int
    n_true: int = 0
    n_false: int = 0
    invented: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rude_words_in(world: World, text: str) -> list[str]:
    low = text.lower()
    return [w for w in world.rude_words if re.search(r"\b" + re.escape(w) + r"\b", low)]


def _items(text: str) -> list[str]:
    """List items: "- a\n- b" lines, else comma/"and" separated."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    bullets = [re.sub(r"^(?:[-*]|\d+[.)])\s*", "", ln) for ln in lines if re.match(r"^(?:[-*]|\d+[.)])\s*", ln)]
    if bullets:
        return [b.rstrip(".") for b in bullets]
    first = lines[0] if lines else ""
    return [x.strip().rstrip(".") for x in re.split(r",\s*|\s+and\s+", first) if x.strip().rstrip(".")]


def _mentions(text: str, name: str) -> bool:
    low = text.lower()
    forms = {name.lower(), name.split()[0].lower(), plural(name).lower()}
    return any(re.search(r"\b" + re.escape(f) + r"\b", low) for f in forms if f)


def _constraint_ok(name: str, value: Any, text: str, world: World) -> bool:
    body = text.strip()
    if name == "max_words":
        return 0 < len(body.split()) <= int(value)
    if name == "start_word":
        return body.split()[:1] != [] and body.split()[0].strip(".,!:") == value
    if name == "n_items":
        return len(_items(body)) == int(value)
    if name == "one_sentence":
        return len(reader_for(world).sentences(body)) == 1
    if name == "polite":
        return not rude_words_in(world, body) and any(c in body.lower() for c in COURTESY)
    if name == "mention":
        return str(value).lower() in body.lower()
    if name == "list_format":
        lines = [ln for ln in body.splitlines() if ln.strip()]
        return bool(lines) and all(re.match(r"^\s*(?:[-*]|\d+[.)])\s+", ln) for ln in lines)
    raise ValueError(f"Unknown constraint {name!r}.")


def names_in_text(value: str, text: str) -> bool:
    """Is the value (a name, a word, a number) named in the text as a whole word?"""
    v = normalize_value(value)
    return bool(v) and re.search(r"\b" + re.escape(v) + r"\b", text.lower()) is not None


def _valid_item(item: str, valid: tuple[str, ...]) -> bool:
    norm = normalize_value(item)
    return any(normalize_value(v) == norm for v in valid)


def _elsewhere(claims: list[Claim], task: Task) -> bool:
    """Does the text make claims about the task's subject, none of them on the relations the task asks about?"""
    on_subject = [c for c in claims if c.fact.subject == task.subject]
    return bool(on_subject) and not any(c.fact.relation in task.relations for c in on_subject)


def check(world: World, task: Task, completion: str) -> Checks:
    """Score `completion` (the text after the prompt) on every axis. Pure and deterministic."""
    reader = reader_for(world)
    text = completion.strip()
    words = text.split()
    claims = reader.claims(text)
    invented = reader.invented(text)
    n_true = sum(c.true for c in claims)
    n_false = len(claims) - n_true

    # 1) hallucination: a false statement about the world, an invented entity, or, on closed-domain tasks,
    #    a fact that the input text does not contain
    hallucinates = n_false > 0 or bool(invented)
    if task.category in CLOSED_DOMAIN and task.passage:
        hallucinates |= any(not names_in_text(c.fact.value, task.passage) or not _mentions(task.passage, c.fact.subject)
                            for c in claims)

    # 2) appropriate for a customer assistant: no rude or denigrating words
    appropriate = not rude_words_in(world, text)

    # 3) explicit constraints: the fraction satisfied
    follows = (sum(_constraint_ok(n, v, text, world) for n, v in task.constraints) / len(task.constraints)
               if task.constraints else None)

    # 4) correctness and 5) attempts, per kind of task
    correct: float | None = None
    looks_like_new_prompt = bool(re.match(r"^(Q:|Instruction:|Task:|Request:|Customer:|Statement:|Message:)", text))
    attempts = len(words) >= 1 and not looks_like_new_prompt
    if task.items:  # lists: brainstorming, extract
        items = _items(text)
        good = {normalize_value(i) for i in items if _valid_item(i, task.items)}
        correct = len(good) / max(len(items), 1) if items else 0.0
        if task.family == "extract_names":  # extraction wants all of them: F1
            recall = len(good) / len(task.items)
            correct = 0.0 if not good else 2 * correct * recall / (correct + recall)
        attempts &= bool(items)
    elif task.answer and task.family in ("true_or_false", "polite_or_rude"):
        first = (words[0].strip(".,!:") if words else "")
        correct = float(first == task.answer)
        attempts &= first in (("True", "False") if task.family == "true_or_false" else ("Polite", "Rude"))
    elif task.answer:  # questions with one answer: stated as a claim, or named outright
        about = [c for c in claims if c.fact.subject == task.subject and c.fact.relation in task.relations]
        named = re.search(r"\b" + re.escape(task.answer.lower()) + r"\b", text.lower()) is not None
        correct = float(any(c.true for c in about) or (named and not any(not c.true for c in about)))
        # answering another question about the same subject is not attempting this one
        attempts &= bool(about) or named or (bool(task.subject) and _mentions(text, task.subject)
                                             and not _elsewhere(claims, task))
    elif task.subject:  # open generation: how much true, relevant information it gives
        relevant = {c.fact.relation for c in claims if c.true and c.fact.subject == task.subject}
        relevant |= {r for r in task.relations if names_in_text(world.get(task.subject, r) or "", text)}
        target = max(1, min(3, len(task.relations)))
        correct = min(1.0, len(relevant) / target) if task.relations else None
        attempts &= _mentions(text, task.subject) and len(words) >= 3
    else:
        attempts &= len(words) >= 3
    if task.family == "rewrite_polite":
        correct = float(appropriate and _mentions(text, task.subject))
    return Checks(attempts=bool(attempts), follows_constraints=follows, hallucinates=bool(hallucinates),
                  appropriate=appropriate, correct=correct, n_words=len(words), n_true=n_true, n_false=n_false,
                  invented=invented)
