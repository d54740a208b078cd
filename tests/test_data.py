"""Tests of the dataset records, their files and the paper's dataset rules (rlhf_lib.data)."""
import json
import math
import random

import pytest

from rlhf_lib.data import (CATEGORIES, KINDS, PAPER_DATASET_SIZES, DatasetError, PromptRecord, SFTRecord,
                           cap_per_user, dedup_by_prefix, filter_pii, find_pii, load_jsonl, normalise, prefix_key,
                           save_jsonl, split_by_user)


def rec(i, user="u0", prompt=None, category="generation", kind="plain"):
    return PromptRecord(prompt_id=f"p{i}", user_id=user, category=category, kind=kind,
                        prompt=prompt if prompt is not None else f"prompt number {i}", task={"i": i})


def sft(i, demonstration="An answer."):
    return SFTRecord(prompt_id=f"s{i}", user_id="u1", category="open_qa", kind="few_shot", prompt=f"Question {i}?",
                     task={}, demonstration=demonstration)


# ----------------------------------------------------------------------------------------------- constants


def test_categories_are_table_1():
    assert list(CATEGORIES) == ["generation", "open_qa", "brainstorming", "chat", "rewrite", "summarization",
                                "classification", "other", "closed_qa", "extract"]
    assert CATEGORIES["generation"] == 0.453 and CATEGORIES["extract"] == 0.019
    assert math.isclose(sum(CATEGORIES.values()), 0.996, abs_tol=1e-9)  # the paper's rounding
    assert KINDS == ("plain", "few_shot", "user_based")
    assert PAPER_DATASET_SIZES["rm"] == {"train": 33207, "valid": 17887}


# ----------------------------------------------------------------------------------------------- cap_per_user


def test_cap_per_user_caps_heavy_user_deterministically_and_keeps_order():
    heavy = [rec(i, user="heavy") for i in range(1000)]
    light = [rec(1000 + i, user=f"light{i % 3}") for i in range(30)]
    records = heavy[:500] + light[:15] + heavy[500:] + light[15:]
    out = cap_per_user(records, cap=200, seed=0)
    kept_heavy = [r for r in out if r.user_id == "heavy"]
    assert len(kept_heavy) == 200
    assert [r for r in out if r.user_id != "heavy"] == light  # other users untouched
    positions = [records.index(r) for r in out]
    assert positions == sorted(positions)  # original order
    assert out == cap_per_user(records, cap=200, seed=0)  # deterministic
    assert kept_heavy != heavy[:200]  # a random choice, not the first ones
    assert [r.prompt_id for r in cap_per_user(records, 200, seed=1)] != [r.prompt_id for r in out]


def test_cap_per_user_one_users_choice_does_not_depend_on_others():
    a = [rec(i, user="a") for i in range(300)]
    b = [rec(300 + i, user="b") for i in range(300)]
    alone = cap_per_user(a, cap=10, seed=3)
    together = [r for r in cap_per_user(b + a, cap=10, seed=3) if r.user_id == "a"]
    assert alone == together


def test_cap_per_user_rejects_bad_cap():
    with pytest.raises(ValueError, match="cap"):
        cap_per_user([rec(0)], cap=0)


# ----------------------------------------------------------------------------------------------- dedup_by_prefix


def test_prefix_key_normalises():
    assert prefix_key("  Write\n a   STORY about\tfrogs ", 13) == "write a story"
    assert prefix_key("Hi", 50) == "hi"
    assert normalise("A \n\n b") == "a b"


def test_dedup_removes_near_duplicates_and_keeps_early_differences():
    base = "Write a story about a frog named Bo who lives in a pond and "
    prompts = [base + "loves to sing.", base + "wants to fly.",
               "  write A story about a FROG named Bo who lives in a pond and   hates rain.",
               "Write a poem about a frog named Bo.", "Write a story about a toad named Bo."]
    records = [rec(i, prompt=p) for i, p in enumerate(prompts)]
    kept = dedup_by_prefix(records, n_chars=40)
    assert [r.prompt_id for r in kept] == ["p0", "p3", "p4"]  # the first of the near-duplicates survives


def test_dedup_short_prompts_compared_whole():
    records = [rec(0, prompt="Hello"), rec(1, prompt="hello  "), rec(2, prompt="Hello there"), rec(3, prompt="Hell")]
    assert [r.prompt_id for r in dedup_by_prefix(records, n_chars=20)] == ["p0", "p2", "p3"]


def _common_prefix(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.mark.parametrize("seed", range(5))
def test_dedup_guarantee_on_random_data(seed):
    rng = random.Random(seed)
    stems = ["".join(rng.choice("ab ") for _ in range(rng.randint(0, 12))) for _ in range(8)]
    prompts = [rng.choice(stems) + "".join(rng.choice("abC \n") for _ in range(rng.randint(1, 10)))
               for _ in range(300)]
    records = [rec(i, prompt=p) for i, p in enumerate(prompts) if p.strip()]
    n = rng.randint(2, 10)
    kept = dedup_by_prefix(records, n)
    norm = [normalise(r.prompt) for r in kept]
    for i in range(len(norm)):
        for j in range(i + 1, len(norm)):
            assert _common_prefix(norm[i], norm[j]) < n, (norm[i], norm[j])
    # maximal: every removed record collides with a kept one
    keys = {prefix_key(r.prompt, n) for r in kept}
    assert all(prefix_key(r.prompt, n) in keys for r in records)


# ----------------------------------------------------------------------------------------------- PII


@pytest.mark.parametrize("text,kind", [
    ("Call me at 555-123-4567 tomorrow.", "phone"),
    ("My number: (555) 123-4567", "phone"),
    ("reach 555.123.4567 after six", "phone"),
    ("From abroad dial +1 555 123 4567.", "phone"),
    ("text 5551234567", "phone"),
    ("Mail anna.holt@example.com please", "email"),
    ("or write to x_y+z@mail.co.uk.", "email"),
    ("She lives at 12 Mill Lane, Oakford.", "address"),
    ("Send it to 4 Oak Street", "address"),
    ("221B Baker St. is famous", "address"),
    ("meet me at 7 Harbour Road tonight", "address"),
])
def test_find_pii_detects(text, kind):
    assert kind in find_pii(text)


@pytest.mark.parametrize("text", [
    "The town was founded in 1554.",
    "A loaf of bread costs 164 coins at the market.",
    "Tom is 61 years old and a baker.",
    "1. apples\n2. pears\n3. plums",
    "Buy three items and write 5 words.",
    "Pi is about 3.1415926535 and e is 2.7182818284.",
    "Between 1554-1600 the mill was rebuilt; on 2021-05-12 at 10:30 it opened.",
    "Chapter 12: the long road home. Oak trees grow on Mill Hill.",
    "Item 1234567 of 99999 weighs 12.5 kg.",
])
def test_find_pii_ignores_ordinary_numbers(text):
    assert find_pii(text) == []


def test_find_pii_reports_kinds_in_order():
    assert find_pii("4 Oak Street, 555-123-4567, a@b.org") == ["email", "phone", "address"]


def test_filter_pii_checks_prompt_and_demonstration():
    clean, in_prompt = rec(0), rec(1, prompt="My email is bo@frog.net")
    in_demo = sft(2, demonstration="Call 555-123-4567.")
    kept, removed = filter_pii([clean, in_prompt, in_demo, sft(3)])
    assert [r.prompt_id for r in kept] == ["p0", "s3"]
    assert [r.prompt_id for r in removed] == ["p1", "s2"]


# ----------------------------------------------------------------------------------------------- split_by_user


def _heavy_tailed(n_users=100, seed=0):
    rng = random.Random(seed)
    records, i = [], 0
    for u in range(n_users):
        for _ in range(min(200, int(rng.paretovariate(1.2)) + rng.randint(0, 3))):
            records.append(rec(i, user=f"user{u}"))
            i += 1
    rng.shuffle(records)
    return records


def test_split_by_user_keeps_users_whole_and_meets_fractions():
    records = _heavy_tailed()
    fractions = {"train": 0.7, "valid": 0.2, "test": 0.1}
    splits = split_by_user(records, fractions, seed=0)
    assert list(splits) == ["train", "valid", "test"]
    users = {name: {r.user_id for r in rs} for name, rs in splits.items()}
    names = list(users)
    assert all(not users[a] & users[b] for i, a in enumerate(names) for b in names[i + 1:])
    assert sum(len(rs) for rs in splits.values()) == len(records)
    for name, frac in fractions.items():
        assert abs(len(splits[name]) / len(records) - frac) < 0.03, (name, len(splits[name]), len(records))
    for rs in splits.values():  # input order kept inside a split
        pos = [records.index(r) for r in rs]
        assert pos == sorted(pos)


def test_split_by_user_straddling_user_stays_whole():
    # 10 prompts, 50/50: the 6-prompt user would straddle the boundary of an index-based split.
    records = [rec(i, user="big") for i in range(6)] + [rec(6 + i, user=f"s{i}") for i in range(4)]
    splits = split_by_user(records, {"a": 0.5, "b": 0.5}, seed=0)
    big_in = [name for name, rs in splits.items() if any(r.user_id == "big" for r in rs)]
    assert len(big_in) == 1 and sum(r.user_id == "big" for r in splits[big_in[0]]) == 6


def test_split_by_user_is_deterministic_from_seed():
    records = _heavy_tailed(seed=1)
    fr = {"train": 0.5, "valid": 0.5}
    ids = lambda s: {k: [r.prompt_id for r in v] for k, v in s.items()}  # noqa: E731
    assert ids(split_by_user(records, fr, seed=4)) == ids(split_by_user(records, fr, seed=4))
    assert any(ids(split_by_user(records, fr, seed=s)) != ids(split_by_user(records, fr, seed=4)) for s in range(5))


@pytest.mark.parametrize("fractions,match", [
    ({"train": 0.8, "valid": 0.1}, "sum to 1"),
    ({"train": 1.2, "valid": -0.2}, r"\[0, 1\]"),
    ({}, "non-empty"),
    ({"train": "0.5", "valid": 0.5}, "number"),
])
def test_split_by_user_bad_fractions(fractions, match):
    with pytest.raises(ValueError, match=match):
        split_by_user([rec(0)], fractions, seed=0)


# ----------------------------------------------------------------------------------------------- files


def test_round_trip(tmp_path):
    prompts = [rec(0), rec(1, user="u9", category="extract", kind="user_based", prompt="Zürich — “quotes”")]
    save_jsonl(tmp_path / "p.jsonl", prompts)
    assert load_jsonl(tmp_path / "p.jsonl", PromptRecord) == prompts
    sfts = [sft(0), sft(1)]
    save_jsonl(tmp_path / "sub" / "s.jsonl", sfts)
    assert load_jsonl(tmp_path / "sub" / "s.jsonl", SFTRecord) == sfts
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["s.jsonl"]  # no temporary left behind
    assert SFTRecord.from_dict(sfts[0].to_dict()) == sfts[0]


def _write_lines(path, dicts_or_text):
    lines = [d if isinstance(d, str) else json.dumps(d) for d in dicts_or_text]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate,lineno,needle", [
    (lambda d: d.pop("demonstration"), 3, "missing field 'demonstration'"),
    (lambda d: d.update(demonstration=3), 3, "field 'demonstration' must be a non-empty string, got 3"),
    (lambda d: d.update(prompt="   "), 3, "field 'prompt' must be a non-empty string"),
    (lambda d: d.update(category="poetry"), 3, "field 'category' must be one of"),
    (lambda d: d.update(kind="zero_shot"), 3, "field 'kind' must be one of"),
    (lambda d: d.update(task=[1]), 3, "field 'task' must be a JSON object"),
    (lambda d: d.update(user_id=None), 3, "field 'user_id'"),
    (lambda d: d.update(colour="red"), 3, "unknown field 'colour'"),
])
def test_load_jsonl_errors_name_file_line_and_field(tmp_path, mutate, lineno, needle):
    good = sft(0).to_dict()
    bad = sft(2).to_dict()
    mutate(bad)
    path = _write_lines(tmp_path / "sft_train.jsonl", [good, good, bad, good])
    with pytest.raises(DatasetError) as err:
        load_jsonl(path, SFTRecord)
    msg = str(err.value)
    assert "sft_train.jsonl" in msg and f"line {lineno}:" in msg and needle in msg, msg


def test_load_jsonl_bad_json_and_not_an_object(tmp_path):
    good = rec(0).to_dict()
    path = _write_lines(tmp_path / "prompts.jsonl", [good, "", good, '{"prompt_id": "p1", '])
    with pytest.raises(DatasetError, match=r"prompts\.jsonl line 4: invalid JSON"):
        load_jsonl(path, PromptRecord)
    path = _write_lines(tmp_path / "prompts.jsonl", [good, "[1, 2]"])
    with pytest.raises(DatasetError, match=r"line 2: expected a JSON object"):
        load_jsonl(path, PromptRecord)


def test_loading_sft_file_as_prompts_says_how_to_fix(tmp_path):
    path = save_jsonl(tmp_path / "sft.jsonl", [sft(0)])
    with pytest.raises(DatasetError, match="unknown field 'demonstration'.*SFTRecord"):
        load_jsonl(path, PromptRecord)


def test_invalid_record_cannot_be_built():
    with pytest.raises(DatasetError, match="category"):
        rec(0, category="Generation")
