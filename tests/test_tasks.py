import random

import pytest

from rlhf_lib.checks import check
from rlhf_lib.tasks import CATEGORIES, FAILURES, FAMILIES, KINDS, Task, candidate_set, degrade, make_task


def test_categories_are_the_papers_table_1():
    assert list(CATEGORIES)[:3] == ["generation", "open_qa", "brainstorming"]
    assert CATEGORIES["generation"] == 0.453 and abs(sum(CATEGORIES.values()) - 1) < 0.01
    assert set(FAMILIES) == set(CATEGORIES)


@pytest.mark.parametrize("category", list(CATEGORIES))
@pytest.mark.parametrize("kind", KINDS)
def test_every_demonstration_passes_every_check(world, category, kind):
    rng = random.Random(list(CATEGORIES).index(category) * 10 + KINDS.index(kind))
    for _ in range(25):
        task, demo = make_task(world, rng, category=category, kind=kind)
        c = check(world, task, demo)
        assert c.attempts and c.appropriate and not c.hallucinates, (task.prompt, demo, c)
        assert c.follows_constraints in (None, 1.0) and c.correct in (None, 1.0), (task.prompt, demo, c)


def test_kinds_look_like_the_paper(world):
    rng = random.Random(0)
    plain, _ = make_task(world, rng, "open_qa", "plain")
    few, demo = make_task(world, rng, "open_qa", "few_shot")
    implicit, _ = make_task(world, rng, "generation", "user_based")
    assert plain.prompt.endswith("\n")
    assert few.prompt.count("\n\n") == 2 and few.prompt.rstrip().endswith(":") and demo.startswith(" ")
    assert not implicit.constraints  # an implicit continuation states no explicit constraint


def test_task_round_trips_through_a_dict(world):
    task, _ = make_task(world, random.Random(3), "brainstorming", "plain")
    again = Task.from_dict(task.to_dict())
    assert again == task and again.constraint("n_items") == task.constraint("n_items")


def test_same_seed_same_tasks(world):
    a = [make_task(world, random.Random(7)) for _ in range(3)]
    b = [make_task(world, random.Random(7)) for _ in range(3)]
    assert a == b


def test_unknown_category_and_kind_are_clear_errors(world):
    with pytest.raises(ValueError, match="Valid categories"):
        make_task(world, random.Random(0), category="poetry")
    with pytest.raises(ValueError, match="Valid kinds"):
        make_task(world, random.Random(0), category="chat", kind="zero_shot")
    with pytest.raises(ValueError, match="Valid failures"):
        degrade(world, *make_task(world, random.Random(0)), random.Random(0), failure="typo")


@pytest.mark.parametrize("failure, axis", [("rude", "appropriate"), ("invented_name", "hallucinates"),
                                           ("new_prompt", "attempts"), ("no_idea", "attempts")])
def test_each_failure_spoils_its_axis(world, failure, axis):
    rng = random.Random(1)
    spoiled = 0
    for _ in range(40):
        task, demo = make_task(world, rng, category="generation")
        _, text = degrade(world, task, demo, rng, failure)
        c = check(world, task, text)
        spoiled += (not getattr(c, axis)) if axis != "hallucinates" else c.hallucinates
    assert spoiled >= 36, f"{failure} spoiled {axis} only {spoiled}/40 times"


def test_candidate_set_has_k_completions_with_the_good_one_first(world):
    rng = random.Random(2)
    task, demo = make_task(world, rng)
    comps = candidate_set(world, task, demo, 6, rng)
    assert len(comps) == 6 and comps[0] == demo and all(isinstance(c, str) for c in comps)
    assert set(FAILURES) >= {"false_fact", "rude", "off_topic"}
