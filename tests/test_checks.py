"""Each checker axis on hand-written good and bad completions."""

import pytest

from rlhf_lib.checks import check, reader_for
from rlhf_lib.tasks import Task
from rlhf_lib.world import Fact


@pytest.fixture(scope="module")
def fox(world):
    return world.of_kind("animal")[0]


@pytest.fixture(scope="module")
def person(world):
    return world.of_kind("person")[0]


def qa_task(world, subject, relation, constraints=()):
    fact = Fact(subject, relation, world.get(subject, relation))
    return Task("open_qa", "plain", "open_qa", world.fact_questions(fact)[0] + "\n", subject=subject,
                answer=fact.value, relations=(relation,), constraints=constraints), fact


def test_claims_are_read_back_with_their_truth(world, fox):
    fact = Fact(fox.name, "diet", fox.attrs["diet"])
    wrong = next(v for v in ("berries", "fish", "seeds") if v != fox.attrs["diet"])
    claims = reader_for(world).claims(world.fact_sentence(fact, __import__("random").Random(0)) + " " +
                                      world.canonical_sentence(Fact(fox.name, "diet", wrong)))
    assert [c.true for c in claims] == [True, False]
    assert claims[0].fact.subject == fox.name and claims[1].fact.value == wrong


def test_correct_answer(world, person):
    task, fact = qa_task(world, person.name, "home")
    c = check(world, task, f"{person.name} lives in {fact.value}.")
    assert c.attempts and c.correct == 1.0 and not c.hallucinates and c.appropriate


def test_false_answer_is_incorrect_and_a_hallucination(world, person):
    task, fact = qa_task(world, person.name, "home")
    other = next(p.name for p in world.of_kind("place") if p.name != fact.value)
    c = check(world, task, f"{person.name} lives in {other}.")
    assert c.correct == 0.0 and c.hallucinates and c.n_false == 1


def test_invented_entity_is_a_hallucination(world, person):
    task, fact = qa_task(world, person.name, "home")
    c = check(world, task, f"{person.name} lives in {fact.value} with Zorbin Quell.")
    assert c.hallucinates and "Zorbin" in c.invented
    nobody = next(f"{f} {l}" for f in ("Mira", "Tom", "Anna") for l in ("Holt", "Ames", "Cole")
                  if f"{f} {l}" not in world.names())
    assert check(world, task, f"{person.name} lives in {fact.value}, near {nobody}.").hallucinates


def test_rude_language_is_inappropriate(world, person):
    task, fact = qa_task(world, person.name, "home")
    c = check(world, task, f"Don't be stupid. {person.name} lives in {fact.value}.")
    assert not c.appropriate and c.correct == 1.0


def test_continuing_the_pattern_is_not_attempting(world, person):
    task, _ = qa_task(world, person.name, "home")
    assert not check(world, task, "Q: What is the weather like there?").attempts
    assert not check(world, task, "").attempts


def test_constraints_are_counted_one_by_one(world, person):
    task, fact = qa_task(world, person.name, "home", constraints=(("max_words", 6), ("start_word", "Sure")))
    assert check(world, task, f"Sure, {person.name} lives in {fact.value}.").follows_constraints == 1.0
    assert check(world, task, f"{person.name} lives in {fact.value}.").follows_constraints == 0.5
    long = f"Well, I think that {person.name} lives in {fact.value}, as far as I know."
    assert check(world, task, long).follows_constraints == 0.0


def test_list_answers_score_valid_items(world):
    homes = [p.attrs["home"] for p in world.of_kind("person")]
    place = max(set(homes), key=homes.count)
    residents = [p.name for p in world.of_kind("person") if p.attrs["home"] == place]
    assert len(residents) >= 2
    task = Task("brainstorming", "plain", "brainstorm", "List two people who live in X.\n", subject=place,
                items=tuple(residents), constraints=(("n_items", 2), ("list_format", True)))
    outsider = next(p.name for p in world.of_kind("person") if p.attrs["home"] != place)
    assert check(world, task, f"- {residents[0]}\n- {residents[1]}").correct == 1.0
    half = check(world, task, f"- {residents[0]}\n- {outsider}")
    assert half.correct == 0.5 and half.follows_constraints == 1.0
    assert check(world, task, f"{residents[0]}, {residents[1]} and {outsider}").follows_constraints == 0.0


def test_closed_domain_answers_must_come_from_the_passage(world, person):
    passage = world.canonical_sentence(Fact(person.name, "job", person.attrs["job"]))
    task = Task("summarization", "plain", "summarize", "Summarize.\n" + passage, subject=person.name,
                passage=passage, relations=("job",))
    assert not check(world, task, passage).hallucinates
    extra = world.canonical_sentence(Fact(person.name, "home", person.attrs["home"]))  # true, but not in the input
    assert check(world, task, passage + " " + extra).hallucinates
