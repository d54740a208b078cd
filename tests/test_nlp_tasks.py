"""The "public NLP" benchmarks of the alignment tax: well-formed items and scoring that can tell right from wrong."""

import pytest
import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import get_profile
from rlhf_lib.nlp_tasks import (TASKS, Item, answer_is_correct, build_benchmarks, ending_logprobs,
                                evaluate_benchmarks, heldout_perplexity)
from rlhf_lib.tokenizer import train_tokenizer
from rlhf_lib.world import build_world, normalize_value


@pytest.fixture(scope="module")
def world():
    """Smaller than conftest's shared `world`, on purpose: these tests were written against this one."""
    return build_world(seed=0, n_people=20, n_places=6, n_animals=8, n_objects=8, n_misconceptions=4)


@pytest.fixture(scope="module")
def benchmarks(world):
    return build_benchmarks(world, 30, seed=0)


def test_every_task_has_items_that_the_world_makes_true(world, benchmarks):
    assert set(benchmarks) == set(TASKS) and all(len(v) == 30 for v in benchmarks.values())
    tricky = {normalize_value(m.fact.value) for m in world.misconceptions}
    for it in benchmarks["reading_qa"]:
        passage = it.prompt.split("\nQ:")[0]
        assert normalize_value(it.answer) in normalize_value(passage)  # answerable from the passage
    for it in benchmarks["closed_book_qa"]:
        assert it.prompt.startswith("Q: ") and it.prompt.endswith("\nA:")
    for it in benchmarks["multiple_choice"]:
        assert len(it.choices) == 4 and len(set(it.choices)) == 4 and it.answer in it.choices[it.label]
        assert all(it.answer not in c for i, c in enumerate(it.choices) if i != it.label)
    assert tricky  # misconceptions exist, and are left to the truthfulness evaluation


def test_same_seed_same_benchmarks(world, benchmarks):
    again = build_benchmarks(world, 30, seed=0)
    assert [i.prompt for i in again["multiple_choice"]] == [i.prompt for i in benchmarks["multiple_choice"]]


def test_answer_check_reads_the_first_line_only():
    item = Item("closed_book_qa", "Q: Where does Mira live?\nA:", "Oakridge")
    assert answer_is_correct(item, " Mira lives in Oakridge.\nQ: next")
    assert not answer_is_correct(item, " Millfield.\nOakridge")


def test_multiple_choice_prefers_what_the_model_was_trained_on():
    texts = ["The fox eats berries."] * 200
    tok = train_tokenizer(texts + ["The fox eats fish. The fox eats seeds. The fox eats roots."], vocab_size=300)
    cfg = get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 32}).base
    model = bm.new_model(cfg, tok, seed=0)
    ids = bm.encode_documents(tok, texts)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        x = ids[:30][None]
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    scores = ending_logprobs(model, tok, "The fox eats", [" fish.", " berries.", " seeds.", " roots."])
    assert max(range(4), key=lambda i: scores[i]) == 1
    item = Item("multiple_choice", "The fox eats", "berries", [" fish.", " berries.", " seeds.", " roots."], 1)
    result = evaluate_benchmarks(model, tok, {"multiple_choice": [item]})
    assert result["multiple_choice"] == 1.0
    assert heldout_perplexity(model, ids, 16) < 5
