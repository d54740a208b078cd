"""The pretraining corpus about the world (notebook 00): stories, encyclopedia entries, dialogues, lists, Q&A,
instructions and news that state the world's facts in varied simple English, repeat a few popular misconceptions and
contain some rude dialogue, each tagged with exact character spans so that truthfulness and toxicity can be measured.

Determinism: only `random.Random` instances seeded from the arguments, lists and insertion-ordered dicts are used
(no global random, no set iteration, no hash()), so the same seed gives a byte-identical corpus.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import re
import tempfile
from dataclasses import dataclass

from rlhf_lib.world import (CALM_REPLIES, CORRECTIONS, FEMALE_NAMES, GOSSIP, RUDE_LINES, RUDE_WORDS, YOU_QUESTIONS,
                            Entity, Fact, Misconception, World, _cap, article, plural)

DOC_KINDS = ("story", "facts", "dialogue", "list", "qa", "instruction", "encyclopedia", "news")
"""The kinds of document the corpus holds."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    tag: str
    detail: str


@dataclass
class Document:
    doc_id: int
    kind: str
    text: str
    spans: list[Span]


def _split_key(doc_id: int) -> int:
    """A fixed bijective scramble of ids (Knuth's multiplicative hash), so the split is stable and unbiased."""
    return (doc_id * 2654435761 + 0x9E3779B9) % 2**32


@dataclass
class Corpus:
    documents: list[Document]
    heldout_fraction: float

    def _heldout_ids(self) -> set[int]:
        n = len(self.documents)
        k = 0 if self.heldout_fraction <= 0 or n < 2 else min(n - 1, max(1, round(self.heldout_fraction * n)))
        return {d.doc_id for d in sorted(self.documents, key=lambda d: _split_key(d.doc_id))[:k]}

    def train_documents(self) -> list[Document]:
        held = self._heldout_ids()
        return [d for d in self.documents if d.doc_id not in held]

    def heldout_documents(self) -> list[Document]:
        held = self._heldout_ids()
        return [d for d in self.documents if d.doc_id in held]

    def train_text(self) -> str:
        return "\n\n".join(d.text for d in self.train_documents())

    def heldout_text(self) -> str:
        return "\n\n".join(d.text for d in self.heldout_documents())

    def spans(self, tag: str | None = None) -> list[tuple[int, Span]]:
        return [(d.doc_id, s) for d in self.documents for s in d.spans if tag is None or s.tag == tag]

    def save(self, path: pathlib.Path) -> None:
        """JSONL: a header line, then one document per line; written to a temp file and renamed (atomic)."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps({"heldout_fraction": self.heldout_fraction,
                                    "n_documents": len(self.documents)}) + "\n")
                for d in self.documents:
                    spans = [{"start": s.start, "end": s.end, "tag": s.tag, "detail": s.detail} for s in d.spans]
                    f.write(json.dumps({"doc_id": d.doc_id, "kind": d.kind, "text": d.text, "spans": spans},
                                       ensure_ascii=False) + "\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: pathlib.Path) -> Corpus:
        path = pathlib.Path(path)
        docs, header = [], None
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    if header is None:
                        header = (float(row["heldout_fraction"]), int(row["n_documents"]))
                        continue
                    spans = [Span(int(s["start"]), int(s["end"]), str(s["tag"]), str(s["detail"]))
                             for s in row["spans"]]
                    docs.append(Document(int(row["doc_id"]), str(row["kind"]), str(row["text"]), spans))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    raise ValueError(f"{path}: line {lineno}: malformed corpus line ({type(e).__name__}: {e})") from e
        if header is None or header[1] != len(docs):
            raise ValueError(f"{path}: expected {header[1] if header else '?'} documents, found {len(docs)}")
        return cls(docs, header[0])


class _Doc:
    """Accumulates text piece by piece so span offsets are exact by construction."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.spans: list[Span] = []

    def add(self, text: str, tag: str | None = None, detail: str = "") -> None:
        if tag is not None:
            self.spans.append(Span(self.n, self.n + len(text), tag, detail))
        self.parts.append(text)
        self.n += len(text)

    def sent(self, text: str, tag: str | None = None, detail: str = "") -> None:
        """Add a sentence, with a space before it unless it starts a line."""
        if self.parts and self.parts[-1][-1:] not in ("\n", " "):
            self.add(" ")
        self.add(text, tag, detail)

    def line(self, text: str = "") -> None:
        self.add("\n" + text)

    def text(self) -> str:
        return "".join(self.parts)


def _pro(name: str) -> tuple[str, str]:
    return ("she", "her") if name.split()[0] in FEMALE_NAMES else ("he", "his")


def _first(name: str) -> str:
    return name.split()[0]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _rude_detail(text: str) -> str:
    return ", ".join(w for w in RUDE_WORDS if re.search(r"\b" + w + r"\b", text.lower()))


OPENINGS = ("One morning,", "Early one day,", "Last spring,", "On a quiet Sunday,", "Once upon a time,",
            "One autumn day,", "Late one afternoon,")
ENDINGS = ("It was a good day.", "{f} was tired but happy.", "{f} slept well that night.", "What a day it had been!")
CONNECTORS = ("Also, ", "In addition, ", "Besides that, ", "What is more, ")
INSTRUCTION_STYLES = (("Instruction:", "Answer:"), ("Task:", "Response:"), ("Request:", "Reply:"))
_SUMMARY_RELATIONS = {"person": ("job", "home", "hobby"), "place": ("climate", "region", "known_for"),
                      "animal": ("size", "habitat", "diet"), "object": ("material", "owner")}
_DOC_WEIGHTS = {"story": 0.20, "facts": 0.14, "dialogue": 0.20, "list": 0.08, "qa": 0.12, "instruction": 0.07,
                "encyclopedia": 0.12, "news": 0.07}


class _Writer:
    """Writes documents of each kind. Every statement is true per the world, except tagged misconceptions."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.w, self.r = world, rng
        self.people, self.places = world.of_kind("person"), world.of_kind("place")
        self.animals, self.objects = world.of_kind("animal"), world.of_kind("object")
        self.misc = {(m.fact.subject, m.fact.relation): m for m in world.misconceptions}
        self.residents = {p.name: [e for e in self.people if e.attrs["home"] == p.name] for p in self.places}
        self.wildlife = {p.name: [e for e in self.animals if e.attrs["habitat"] == p.name] for p in self.places}
        self.made_in = {p.name: [e for e in self.objects if e.attrs["made_in"] == p.name] for p in self.places}
        self.owned = {p.name: [e for e in self.objects if e.attrs["owner"] == p.name] for p in self.people}
        self.keepers = {a.name: [e for e in self.people if e.attrs["pet"] == a.name] for a in self.animals}

    # -- statements ------------------------------------------------------------------------------------------
    def truth(self, m: Misconception) -> str:
        return "truth: " + self.w.canonical_sentence(m.fact)

    def false_sentence(self, m: Misconception) -> str:
        wrapper = self.r.choice(GOSSIP)
        lie = Fact(m.fact.subject, m.fact.relation, m.false_value)
        return wrapper + self.w.fact_sentence(lie, self.r, cap=not wrapper)

    def false_clause(self, m: Misconception) -> str:
        lie = Fact(m.fact.subject, m.fact.relation, m.false_value)
        return self.w.fact_sentence(lie, self.r, cap=False).rstrip(".")

    def claim(self, d: _Doc, subject: str, relation: str, p_false: float = 0.0, prefix: str = "") -> bool:
        """State a fact; a misconceived one is stated wrongly (and tagged) with probability p_false. True if so."""
        m = self.misc.get((subject, relation))
        if m is not None and self.r.random() < p_false:
            d.sent(self.false_sentence(m), "misconception", self.truth(m))
            return True
        cap = not prefix or prefix.rstrip()[-1:] in ".!?:"
        d.sent(prefix + self.w.fact_sentence(Fact(subject, relation, self.w.get(subject, relation)), self.r, cap))
        return False

    def correction(self, d: _Doc, m: Misconception) -> None:
        """"Many people think X, but in fact Y": the quoted false claim is tagged, the truth is not."""
        pre, mid = self.r.choice(CORRECTIONS)
        d.sent(pre)
        d.add(self.false_clause(m), "misconception", self.truth(m))
        d.add(mid + self.w.fact_sentence(m.fact, self.r, cap=mid.endswith(". ") or mid.endswith(": ")))

    def quoted_gossip(self, d: _Doc, speaker: str, m: Misconception) -> None:
        d.sent(f'{_first(speaker)} said, "')
        d.add(self.false_sentence(m), "misconception", self.truth(m))  # add, not sent: no space after the quote
        d.add('"')

    def pick_misc(self) -> Misconception | None:
        return self.r.choice(self.w.misconceptions) if self.w.misconceptions else None

    # -- document kinds --------------------------------------------------------------------------------------
    def story(self, d: _Doc) -> None:
        self.r.choice((self.story_trip, self.story_trip, self.story_object, self.story_animal))(d)

    def story_trip(self, d: _Doc) -> None:
        r, p = self.r, self.r.choice(self.people)
        a, f = p.attrs, _first(p.name)
        he, his = _pro(p.name)
        dest = r.choice([x for x in self.places if x.name != a["home"]])
        d.sent(f"{r.choice(OPENINGS)} {p.name} decided to visit {dest.name}.")
        for rel in r.sample(("job", "trait", "home", "hobby", "age"), 2):
            self.claim(d, p.name, rel, 0.5)
        d.sent(f"{f} took {his} {a['pet']} along for company.")
        self.claim(d, a["pet"], r.choice(("diet", "sound", "color", "size")), 0.5)
        d.line()
        d.sent(f"When they reached {dest.name}, {f} saw the {dest.attrs['landmark']}.")
        self.claim(d, dest.name, r.choice(("climate", "known_for", "water", "founded", "region")), 0.5)
        if self.wildlife[dest.name]:
            an = r.choice(self.wildlife[dest.name])
            d.sent(f"Near the {dest.attrs['landmark']}, {f} spotted {article(an.name)}.")
            self.claim(d, an.name, r.choice(("diet", "color", "sound", "size", "lifespan", "legs")), 0.5)
        if r.random() < 0.6:
            friend = a["friend"]
            d.line()
            d.sent(f"There {he} met {friend}, {his} best friend.")
            self.claim(d, friend, r.choice(("job", "hobby", "trait")), 0.5)
            m = self.pick_misc()
            if m is not None and r.random() < 0.4:
                self.quoted_gossip(d, friend, m)
                if r.random() < 0.3:
                    d.sent(f'{f} laughed. "That is not true. {self.w.fact_sentence(m.fact, r)}"')
        d.line()
        d.sent(f"In the evening, {f} went back home to {a['home']} and ate {a['favorite_food']} for supper.")
        d.sent(r.choice(ENDINGS).format(f=f))

    def story_object(self, d: _Doc) -> None:
        r, o = self.r, self.r.choice(self.objects)
        a, owner = o.attrs, o.attrs["owner"]
        f, noun = _first(owner), o.name.split()[-1]
        d.sent(f"{r.choice(OPENINGS)} {owner} went to {a['made_in']} and came back with the {o.name}.")
        d.sent(f"{f} paid {a['price']} coins for it.")
        for rel in r.sample(("material", "color"), 2):
            self.claim(d, o.name, rel, 0.5)
        d.sent(f"{f} uses it for {a['use']}.")
        self.claim(d, owner, r.choice(("job", "trait", "home")), 0.5)
        d.line()
        friend = self.w.get(owner, "friend")
        d.sent(f"Later, {f} showed the {o.name} to {friend}.")
        d.sent(f'"What a fine {noun}!" said {_first(friend)}.')
        if r.random() < 0.5:
            self.claim(d, a["made_in"], "known_for", 0.5, prefix="After all, ")
        d.sent(r.choice(ENDINGS).format(f=f))

    def story_animal(self, d: _Doc) -> None:
        r, an = self.r, self.r.choice(self.animals)
        hab = an.attrs["habitat"]
        d.sent(f"In the land around {hab}, there lived {article(an.name)}.")
        for rel in r.sample(("diet", "color", "size", "lifespan", "legs"), 3):
            self.claim(d, an.name, rel, 0.5)
        p = r.choice(self.residents[hab] or self.people)
        f = _first(p.name)
        d.line()
        d.sent(f"One day, {p.name}, {article(p.attrs['job'])} from {p.attrs['home']}, came walking by.")
        d.sent(f"{f} heard the animal from far away, because the {an.name} {an.attrs['sound']} loudly.")
        if p.attrs["pet"] == an.name:
            d.sent(f"{f} smiled, because {_pro(p.name)[1]} own pet is {article(an.name)} too.")
        m = next((m for m in self.w.misconceptions if m.fact.subject == an.name), None)
        if m is not None and r.random() < 0.6:
            d.sent(f'{f} thought of an old saying: "')
            d.add(self.false_sentence(m), "misconception", self.truth(m))
            d.add('"')
        d.sent(f"Then {f} left the {an.name} in peace and walked home.")

    def facts(self, d: _Doc) -> None:
        r, e = self.r, self.r.choice(list(self.w.entities.values()))
        facts = self.w.facts_about(e.name)
        r.shuffle(facts)
        if r.random() < 0.4:
            d.add(f"Facts about {'the ' if e.kind in ('animal', 'object') else ''}{e.name}:")
            d.line()
        for i, fact in enumerate(facts[:r.randint(3, min(7, len(facts)))]):
            prefix = r.choice(CONNECTORS) if i and r.random() < 0.25 else ""
            self.claim(d, fact.subject, fact.relation, 0.4, prefix)
        link = {"person": "home", "animal": "habitat", "object": "owner"}.get(e.kind)
        if link and r.random() < 0.5:
            other = e.attrs[link]
            rel = r.choice([f.relation for f in self.w.facts_about(other)])
            self.claim(d, other, rel, 0.4)

    def dialogue(self, d: _Doc) -> None:
        r, a = self.r, self.r.choice(self.people)
        A, others = a.name, [p.name for p in self.people if _first(p.name) != _first(a.name)]
        B = r.choice([a.attrs.get("sibling")] + [a.attrs["friend"]] * 2 + [r.choice(others)] * 2)
        B = B if B in others else r.choice(others)  # two speakers never share a first name
        d.add(f"{A}: " + r.choice(("Hello, {b}! How are you?", "Good morning, {b}.", "Hi {b}, nice to see you."))
              .format(b=_first(B)))
        d.line(f"{B}: " + r.choice(("I am well, thank you, {a}.", "Hello, {a}! I am fine.", "Good to see you, {a}."))
               .format(a=_first(A)))
        topics = r.sample(("you", "place", "animal", "object", "gossip"), r.randint(2, 4))
        rude_at = r.randrange(len(topics) + 1) if r.random() < 0.13 else -1

        def turn() -> tuple[str, str]:  # whoever did not speak last goes next
            return (B, A) if d.text().rsplit("\n", 1)[-1].startswith(A + ":") else (A, B)

        for i in range(len(topics) + 1):
            if i == rude_at:
                self.rude_exchange(d, *turn())
            if i < len(topics):
                getattr(self, "talk_" + topics[i])(d, *turn())
        x, y = turn()
        d.line(f"{x}: " + r.choice(("Goodbye, {b}!", "See you soon, {b}.", "I must go now. Bye, {b}!"))
               .format(b=_first(y)))

    def talk_you(self, d: _Doc, x: str, y: str) -> None:
        for rel in self.r.sample(list(YOU_QUESTIONS), self.r.randint(1, 2)):
            question, answers = YOU_QUESTIONS[rel]
            v = self.w.get(y, rel)
            d.line(f"{x}: {question}")
            d.line(f"{y}: " + self.r.choice(answers).format(v=v, va=article(v)))
        if rel == "pet":
            d.line(f"{x}: ")
            self.claim(d, v, self.r.choice(("diet", "sound", "size", "lifespan")), 0.6, prefix="Oh, I know. ")
        elif rel == "home":
            d.line(f"{x}: ")
            self.claim(d, v, self.r.choice(("climate", "landmark", "known_for")), 0.6, prefix="Nice. ")

    def talk_place(self, d: _Doc, x: str, y: str) -> None:
        q = self.r.choice(self.places).name
        d.line(f"{x}: Have you ever been to {q}?")
        d.line(f"{y}: ")
        prefix = self.r.choice(("Yes, I have. ", "No, but I know that ", "Once. "))
        self.claim(d, q, self.r.choice(("climate", "landmark", "known_for", "water", "region")), 0.6, prefix)

    def talk_animal(self, d: _Doc, x: str, y: str) -> None:
        an = self.r.choice(self.animals).name
        rel = self.r.choice(("diet", "color", "sound", "habitat", "lifespan", "size"))
        d.line(f"{x}: I saw {article(an)} yesterday.")
        d.line(f"{y}: ")
        if self.claim(d, an, rel, 0.6, prefix="Really? ") and self.r.random() < 0.3:
            truth = Fact(an, rel, self.w.get(an, rel))
            d.line(f"{x}: Are you sure? I read that {self.w.fact_sentence(truth, self.r, cap=False)}")

    def talk_object(self, d: _Doc, x: str, y: str) -> None:
        o = self.r.choice([e for e in self.objects if e.attrs["owner"] not in (x, y)] or self.objects).name
        d.line(f"{x}: Who owns the {o}?")
        d.line(f"{y}: ")
        self.claim(d, o, "owner", 0.6)
        d.line(f"{x}: ")
        self.claim(d, o, self.r.choice(("material", "made_in", "price", "color")), 0.6, prefix="I see. ")

    def talk_gossip(self, d: _Doc, x: str, y: str) -> None:
        m = self.pick_misc()
        if m is None:
            return self.talk_place(d, x, y)
        d.line(f"{x}: ")
        if self.r.random() < 0.5:
            d.add("Did you know that ")
            d.add(self.false_clause(m), "misconception", self.truth(m))
            d.add("?")
        else:
            d.add(self.false_sentence(m), "misconception", self.truth(m))
        if self.r.random() < 0.3:
            d.line(f"{y}: That is not true. {self.w.fact_sentence(m.fact, self.r)}")
        else:
            d.line(f"{y}: " + self.r.choice(("Yes, everyone says so.", "I heard that too.", "Really? I did not know.")))

    def rude_exchange(self, d: _Doc, x: str, y: str) -> None:
        """One character insults the other; each rude sentence is tagged with the rude words it uses."""
        r = self.r
        fill = {"b": _first(y), "job": self.w.get(y, "job"), "pet": self.w.get(y, "pet")}
        d.line(f"{x}: ")
        for line in r.sample(RUDE_LINES, 1 if r.random() < 0.7 else 2):
            text = line.format(**fill)
            d.sent(text, "rude", _rude_detail(text))
        if r.random() < 0.7:
            d.line(f"{y}: " + r.choice(CALM_REPLIES).format(b=_first(x)))
        else:
            text = r.choice(RUDE_LINES).format(b=_first(x), job=self.w.get(x, "job"), pet=self.w.get(x, "pet"))
            d.line(f"{y}: ")
            d.add(text, "rude", _rude_detail(text))
            d.line(f"{x}: I am sorry, {_first(y)}. I should not have said that.")

    def list(self, d: _Doc) -> None:
        r = self.r
        q = r.choice(self.places).name
        p = r.choice(self.people).name
        diet = r.choice(self.animals).attrs["diet"]
        region = r.choice(self.places).attrs["region"]
        options = [
            (f"People who live in {q}", [e.name for e in self.residents[q]]),
            (f"Animals found near {q}", ["the " + e.name for e in self.wildlife[q]]),
            (f"Things made in {q}", ["the " + e.name for e in self.made_in[q]]),
            (f"Things that belong to {p}", ["the " + e.name for e in self.owned[p]]),
            (f"Animals that eat {diet}", ["the " + e.name for e in self.animals if e.attrs["diet"] == diet]),
            (f"Towns in {region}", [e.name for e in self.places if e.attrs["region"] == region]),
        ]
        title, items = r.choice([o for o in options if o[1]])
        table = r.random() < 0.3  # an attribute table of one entity instead
        if table:
            e = r.choice(list(self.w.entities.values()))
            title, items = _cap(e.name), [f"{k.replace('_', ' ')}: {v}" for k, v in e.attrs.items()]
        elif r.random() < 0.3:
            d.add(f"{title}: {_join(items)}.")
            return
        numbered = r.random() < 0.3
        d.add(title + ":")
        for i, item in enumerate(items):
            d.line(f"{i + 1}. {item}" if numbered else f"- {item}")

    def qa(self, d: _Doc) -> None:
        r = self.r
        if r.random() < 0.4:
            facts = self.w.facts_about(r.choice(list(self.w.entities.values())).name)
            facts = r.sample(facts, r.randint(3, min(6, len(facts))))
        else:
            facts = [r.choice(self.w.facts_about(r.choice(list(self.w.entities.values())).name))
                     for _ in range(r.randint(3, 7))]
        for i, fact in enumerate(facts):
            if i:
                d.line()
            d.add(f"Q: {self.w.question(fact, r)}\nA: ")
            m, short = self.misc.get((fact.subject, fact.relation)), r.random() < 0.4
            if m is not None and r.random() < 0.5:
                lie = Fact(fact.subject, fact.relation, m.false_value)
                d.add(self.w.short_answer(lie) if short else self.w.fact_sentence(lie, r), "misconception",
                      self.truth(m))
            else:
                d.add(self.w.short_answer(fact) if short else self.w.fact_sentence(fact, r))
        m = self.pick_misc()
        if m is not None and r.random() < 0.15:
            d.line("Q: Is it true that ")
            d.add(self.false_clause(m), "misconception", self.truth(m))
            d.add(f"?\nA: No. {self.w.fact_sentence(m.fact, r)}")

    def instruction(self, d: _Doc) -> None:
        r, w = self.r, self.w
        ins, ans = r.choice(INSTRUCTION_STYLES)
        kind = r.choice(("animals", "describe", "note", "question", "people", "summary"))
        if kind == "animals":
            q = r.choice([p for p in self.places if self.wildlife[p.name]] or self.places).name
            names = ["the " + a.name for a in self.wildlife[q]] or ["none"]
            k = min(3, len(names))
            d.add(f"{ins} Name {('an animal', 'two animals', 'three animals')[k - 1]} that "
                  f"{'lives' if k == 1 else 'live'} near {q}.\n{ans} {_cap(_join(r.sample(names, k)))}.")
        elif kind == "describe":
            e = r.choice(list(w.entities.values()))
            label = ("the " if e.kind in ("animal", "object") else "") + e.name
            d.add(f"{ins} {r.choice(('Describe {x} in a few sentences.', 'Tell me about {x}.')).format(x=label)}\n"
                  f"{ans} {w.describe(e.name)}")
        elif kind == "note":
            p = r.choice(self.people)
            a, friend = p.attrs, p.attrs["friend"]
            if r.random() < 0.5:
                d.add(f"{ins} Write a short note from {p.name} to {friend} about {_pro(p.name)[1]} pet {a['pet']}.\n"
                      f"{ans} Dear {_first(friend)},\nMy {a['pet']} is doing well.")
                self.claim(d, a["pet"], r.choice(("diet", "sound", "size")))
            else:
                d.add(f"{ins} Write a short invitation from {p.name} to {friend} to visit {a['home']}.\n"
                      f"{ans} Dear {_first(friend)},\nPlease come and visit me in {a['home']}.")
                self.claim(d, a["home"], r.choice(("landmark", "known_for", "water")))
            d.line(r.choice(("Best wishes,", "Yours,", "See you soon,")))
            d.line(_first(p.name))
        elif kind == "question":
            e = r.choice(list(w.entities.values()))
            fact = r.choice(w.facts_about(e.name))
            d.add(f"{ins} Answer the question. {w.question(fact, r)}\n{ans} ")
            self.claim(d, fact.subject, fact.relation, 0.3)
        elif kind == "people":
            q = r.choice([p for p in self.places if self.residents[p.name]]).name
            d.add(f"{ins} List the people who live in {q}.\n{ans}")
            for e in self.residents[q]:
                d.line("- " + e.name)
        else:
            e = r.choice(list(w.entities.values()))
            d.add(f"{ins} Summarize the following text in one sentence.\n")
            keep = _SUMMARY_RELATIONS[e.kind]  # the text must contain everything the summary says
            others = [f for f in w.facts_about(e.name) if f.relation not in keep]
            facts = [f for f in w.facts_about(e.name) if f.relation in keep] + r.sample(others, min(2, len(others)))
            r.shuffle(facts)
            for fact in facts:
                self.claim(d, fact.subject, fact.relation)
            d.line(f"{ans} {self.summary(e)}")

    def summary(self, e: Entity) -> str:
        """One sentence built from exactly the `_SUMMARY_RELATIONS` of `e`."""
        a = e.attrs
        if e.kind == "person":
            return f"{e.name} is {article(a['job'])} from {a['home']} who enjoys {a['hobby']}."
        if e.kind == "place":
            return f"{e.name} is {article(a['climate'])} town in {a['region']} known for its {a['known_for']}."
        if e.kind == "animal":
            return f"The {e.name} is {article(a['size'])} animal that lives near {a['habitat']} and eats {a['diet']}."
        return f"The {e.name} is made of {a['material']} and belongs to {a['owner']}."

    def encyclopedia(self, d: _Doc) -> None:
        r, e = self.r, self.r.choice(list(self.w.entities.values()))
        d.add(_cap(e.name))
        d.line()
        for i, fact in enumerate(self.w.facts_about(e.name)):
            if i and i % 4 == 0:
                d.line()
            self.claim(d, fact.subject, fact.relation)
        extra = []
        if e.kind == "place":
            extra = [("People who live in {x} include ", [p.name for p in self.residents[e.name]]),
                     ("Animals found near {x} include ", ["the " + a.name for a in self.wildlife[e.name]]),
                     ("Things made in {x} include ", ["the " + o.name for o in self.made_in[e.name]])]
        elif e.kind == "person":
            extra = [("{x} owns ", ["the " + o.name for o in self.owned[e.name]])]
        elif e.kind == "animal":
            extra = [("People who keep {x} as pets include ", [p.name for p in self.keepers[e.name]])]
        label = plural(e.name) if e.kind == "animal" else e.name
        for text, items in extra:
            if items:
                d.line(_cap(text.format(x=label)) + _join(items[:6]) + ".")
        for rel in e.attrs:
            m = self.misc.get((e.name, rel))
            if m is not None and r.random() < 0.6:
                d.line()
                self.correction(d, m)

    def news(self, d: _Doc) -> None:
        r = self.r
        story = r.choice(("fair", "pet", "sale", "weather", "sighting"))
        q = r.choice(self.places)
        if story == "fair":
            d.add(r.choice(("{q} News", "News from {q}")).format(q=q.name))
            d.line(f"This week, the town of {q.name} held its yearly {q.attrs['known_for']} fair.")
            self.claim(d, q.name, r.choice(("founded", "water", "region", "landmark")), 0.4)
            if self.residents[q.name]:
                p = r.choice(self.residents[q.name])
                d.sent(f"{p.name}, {article(p.attrs['job'])} from {q.name}, said it was the best fair in years.")
        elif story == "pet":
            p = r.choice(self.people)
            a, f = p.attrs, _first(p.name)
            d.add(f"Lost and found in {a['home']}")
            d.line(f"{_cap(article(a['pet']))} belonging to {p.name} went missing in {a['home']} last week.")
            d.sent(f"{p.name}, {article(a['job'])}, asked the neighbors for help.")
            self.claim(d, a["pet"], r.choice(("color", "sound", "size")), 0.4)
            d.sent(f"The {a['pet']} was found two days later near the "
                   f"{self.w.get(a['home'], 'landmark')}, and {f} thanked everyone.")
        elif story == "sale":
            o = r.choice(self.objects)
            a = o.attrs
            d.add("Market report")
            d.line(f"{a['owner']} bought the {o.name} for {a['price']} coins.")
            d.sent(f"The {o.name} was made in {a['made_in']}.")
            self.claim(d, o.name, r.choice(("material", "color")), 0.4)
            self.claim(d, a["made_in"], "known_for", 0.4, prefix="As many know, ")
        elif story == "weather":
            d.add(f"Weather in {q.attrs['region']}")
            d.line(f"The weather in {q.name} was {q.attrs['climate']} again this week, as it usually is.")
            for other in [p for p in self.places if p.attrs["region"] == q.attrs["region"] and p is not q][:2]:
                self.claim(d, other.name, "climate", 0.4)
        else:
            an = r.choice(self.animals)
            d.add(f"Animal news from {an.attrs['habitat']}")
            d.line(f"Many {plural(an.name)} were seen near {an.attrs['habitat']} this week.")
            for rel in r.sample(("color", "size", "sound", "diet"), 2):
                self.claim(d, an.name, rel, 0.4)
            m = next((self.misc[k] for k in self.misc if k[0] == an.name), None) or self.pick_misc()
            if m is not None and r.random() < 0.5:
                d.sent("Some residents repeated the old belief that ")
                d.add(self.false_clause(m), "misconception", self.truth(m))
                d.add(".")


def build_corpus(world: World, n_chars: int = 3_000_000, seed: int = 0, heldout_fraction: float = 0.05) -> Corpus:
    """Sample documents until about n_chars characters; same (world, seed) -> byte-identical corpus."""
    rng = random.Random(seed * 1_000_003 + world.seed)
    writer = _Writer(world, rng)
    kinds, weights = list(_DOC_WEIGHTS), list(_DOC_WEIGHTS.values())
    docs: list[Document] = []
    total = 0
    while total < n_chars:
        kind = rng.choices(kinds, weights)[0]
        d = _Doc()
        getattr(writer, kind)(d)
        text = d.text()
        docs.append(Document(len(docs), kind, text, d.spans))
        total += len(text) + 2
    return Corpus(docs, heldout_fraction)
