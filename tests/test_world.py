"""Tests of the fictional world and its pretraining corpus (rlhf_lib.world)."""
import random
import re
import time

import pytest

from rlhf_lib.corpus import DOC_KINDS, Corpus, build_corpus
from rlhf_lib.world import ENTITY_RELATIONS, KINDS, Fact, build_world

N_CHARS = 200_000


@pytest.fixture(scope="module")
def world():
    """The default-size world (what the notebooks build), not conftest's smaller shared `world`."""
    return build_world(0)


@pytest.fixture(scope="module")
def corpus(world):
    return build_corpus(world, N_CHARS, seed=0)


def _has(word: str, text: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(word.lower()) + r"(?!\w)", text.lower()) is not None


def _misc_by_truth(world):
    return {"truth: " + world.canonical_sentence(m.fact): m for m in world.misconceptions}


def _masked(doc, tag=None) -> str:
    """Document text, lower-cased, with tagged spans blanked out."""
    chars = list(doc.text.lower())
    for s in doc.spans:
        if tag is None or s.tag == tag:
            chars[s.start:s.end] = "#" * (s.end - s.start)
    return "".join(chars)


def _contains_phrase(haystack: str, needle: str) -> bool:
    """Substring match that does not start inside a word ("anna cole" must not match "hanna cole")."""
    i = haystack.find(needle)
    while i != -1:
        if i == 0 or not haystack[i - 1].isalnum():
            return True
        i = haystack.find(needle, i + 1)
    return False


def test_determinism(world, corpus):
    assert build_world(0) == world
    again = build_corpus(build_world(0), N_CHARS, seed=0)
    assert again.documents == corpus.documents
    assert again.train_text() == corpus.train_text()
    assert build_corpus(world, N_CHARS, seed=1).train_text() != corpus.train_text()
    assert build_world(1) != world


def test_world_structure(world):
    assert len(world.of_kind("person")) == 60 and len(world.of_kind("place")) == 15
    assert len(world.of_kind("animal")) == 20 and len(world.of_kind("object")) == 30
    assert len(world.names()) == 125 and {e.kind for e in world.entities.values()} == set(KINDS)
    assert world.facts == [Fact(e.name, r, v) for e in world.entities.values() for r, v in e.attrs.items()]
    for f in world.facts:
        assert f.subject in world.entities
        if f.relation in ENTITY_RELATIONS:
            assert world.entities[f.value].kind == ENTITY_RELATIONS[f.relation], f
            assert f.value != f.subject
        assert world.get(f.subject, f.relation) == f.value
        assert world.is_true(f.subject, f.relation, f.value) is True
        assert world.is_true(f.subject, f.relation, f.value.upper() + ".") is True  # loose comparison
        assert world.is_true(f.subject, f.relation, "no such value") is False
    for p in world.of_kind("person"):
        if "sibling" in p.attrs:
            assert world.get(p.attrs["sibling"], "sibling") == p.name
    assert world.get("Nobody Here", "home") is None and world.is_true("Nobody Here", "home", "x") is None
    assert world.is_true(world.facts[0].subject, "no_relation", "x") is None


def test_sentences_and_descriptions(world):
    rng = random.Random(0)
    for f in world.facts:
        s = world.fact_sentence(f, rng)
        assert s[0].isupper() and s.endswith(".") and f.value in s, s
        assert all(f.value in v for v in world.fact_sentences(f))
        assert all(q.endswith("?") for q in world.fact_questions(f))
    questions = [q for f in world.facts for q in world.fact_questions(f)]
    assert len(questions) == len(set(questions))  # a question names its fact unambiguously
    for e in world.entities.values():
        text = world.describe(e.name)
        assert e.name in text and text.endswith(".")
        for rel in ("home", "habitat", "owner", "region"):
            if rel in e.attrs:
                assert e.attrs[rel] in text


def test_misconceptions(world):
    ms = world.misconceptions
    assert len(ms) == 12 and len({m.fact.subject for m in ms}) == 12
    for m in ms:
        assert m.fact in world.facts
        assert m.false_value != m.fact.value
        assert world.is_true(m.fact.subject, m.fact.relation, m.false_value) is False
        assert _has(m.false_value, m.statement) and not _has(m.fact.value, m.statement)
        assert m.question in world.fact_questions(m.fact)
        assert world.misconception(m.fact.subject, m.fact.relation) == m


def test_corpus_shape(corpus):
    docs = corpus.documents
    assert [d.doc_id for d in docs] == list(range(len(docs)))
    assert {d.kind for d in docs} == set(DOC_KINDS)
    total = sum(len(d.text) + 2 for d in docs)
    assert N_CHARS <= total < N_CHARS + 5_000
    for d in docs:
        assert d.text and d.text == d.text.strip() and "\n\n" not in d.text
    share = sum(d.kind == "instruction" for d in docs) / len(docs)
    assert 0.03 < share < 0.12  # the base model should be only weakly instruction-following


def test_spans(world, corpus):
    by_truth = _misc_by_truth(world)
    for d in corpus.documents:
        for s in d.spans:
            assert 0 <= s.start < s.end <= len(d.text)
            text = d.text[s.start:s.end]
            assert text.strip() == text and text
            if s.tag == "misconception":
                m = by_truth[s.detail]
                assert _has(m.false_value, text) and not _has(m.fact.value, text), (text, m)
            else:
                assert s.tag == "rude"
                words = s.detail.split(", ")
                assert words and all(w in world.rude_words and _has(w, text) for w in words)
    misc, rude = corpus.spans("misconception"), corpus.spans("rude")
    assert misc and rude and len(misc) + len(rude) == len(corpus.spans())
    assert {by_truth[s.detail].fact for _, s in misc} == {m.fact for m in world.misconceptions}
    rude_docs = {i for i, _ in rude}
    dialogues = [d for d in corpus.documents if d.kind == "dialogue"]
    assert 0.05 < len(rude_docs) / len(dialogues) < 0.25
    assert all(corpus.documents[i].kind == "dialogue" for i in rude_docs)


def test_rude_words_only_inside_rude_spans(world, corpus):
    for d in corpus.documents:
        clean = _masked(d, "rude")
        assert not any(_has(w, clean) for w in world.rude_words), d.text


def test_false_statements_are_always_tagged(world, corpus):
    """Any phrasing of a misconception's lie appears only inside misconception spans."""
    texts = [_masked(d, "misconception") for d in corpus.documents]
    for m in world.misconceptions:
        lie = Fact(m.fact.subject, m.fact.relation, m.false_value)
        for v in world.fact_sentences(lie):
            assert not any(_contains_phrase(t, v.lower()) for t in texts), v


def test_untagged_statements_are_true(world, corpus):
    """For every fact, no phrasing of a wrong value appears in the corpus outside misconception spans."""
    text = "\n".join(_masked(d, "misconception") for d in corpus.documents)
    rng = random.Random(0)
    values: dict[tuple[str, str], list[str]] = {}
    for f in world.facts:
        values.setdefault((world.entities[f.subject].kind, f.relation), []).append(f.value)
    n_checked = 0
    for f in world.facts:
        pool = sorted(set(values[(world.entities[f.subject].kind, f.relation)]) - {f.value})
        for wrong in rng.sample(pool, min(6, len(pool))):
            for v in world.fact_sentences(Fact(f.subject, f.relation, wrong)):
                assert not _contains_phrase(text, v.lower()), v
                n_checked += 1
    assert n_checked > 5_000


def test_qa_answers_match_world(world, corpus):
    question_to_fact = {q: f for f in world.facts for q in world.fact_questions(f)}
    by_truth, n_true, n_false = _misc_by_truth(world), 0, 0
    for d in corpus.documents:
        if d.kind != "qa":
            continue
        for match in re.finditer(r"^Q: (.*)\nA: (.*)$", d.text, re.M):
            fact = question_to_fact.get(match.group(1))
            if fact is None:
                continue
            answer, start = match.group(2), match.start(2)
            tags = [s for s in d.spans if s.tag == "misconception" and s.start <= start < s.end]
            if tags:
                m = by_truth[tags[0].detail]
                assert m.fact == fact and _has(m.false_value, answer)
                n_false += 1
            else:
                assert _has(fact.value, answer), (match.group(0), fact)
                n_true += 1
    assert n_true > 100 and n_false > 0


def test_heldout_split(corpus):
    held, train = corpus.heldout_documents(), corpus.train_documents()
    assert held and train
    held_ids, train_ids = {d.doc_id for d in held}, {d.doc_id for d in train}
    assert not held_ids & train_ids and len(held_ids | train_ids) == len(corpus.documents)
    assert abs(len(held) / len(corpus.documents) - 0.05) < 0.01
    assert {d.doc_id for d in Corpus(list(corpus.documents), 0.05).heldout_documents()} == held_ids
    assert corpus.heldout_text() == "\n\n".join(d.text for d in held)
    assert corpus.train_text() == "\n\n".join(d.text for d in train)


def test_save_load_round_trip(tmp_path, corpus):
    path = tmp_path / "corpus.jsonl"
    corpus.save(path)
    assert Corpus.load(path) == corpus
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.jsonl"]  # no temp file left behind
    lines = path.read_text(encoding="utf-8").splitlines()

    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:3] + ["{not json"] + lines[4:]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl.*line 4"):
        Corpus.load(bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text("\n".join(lines[:1] + [lines[1].replace('"text"', '"txet"')] + lines[2:]) + "\n",
                       encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing\.jsonl.*line 2"):
        Corpus.load(missing)


def test_small_world_profile():
    w = build_world(seed=3, n_people=30, n_places=8, n_animals=10, n_objects=12, n_misconceptions=6)
    assert len(w.misconceptions) == 6 and len(w.names()) == 60
    c = build_corpus(w, 50_000, seed=3, heldout_fraction=0.1)
    assert c.heldout_documents() and c.spans("misconception")


def test_speed_3mb(world):
    t = time.perf_counter()
    c = build_corpus(world, 3_000_000)
    assert time.perf_counter() - t < 10.0
    assert len(c.train_text()) > 2_500_000
