"""Tests of the real-dataset loaders on small local fixtures in the public schemas (rlhf_lib.real_data).

Nothing here touches the network: the fixtures are read with `datasets.load_dataset("json", ...)`.
"""
import json
from pathlib import Path

import pytest

from rlhf_lib.data import (CATEGORIES, DatasetError, SFTRecord, find_pii, load_jsonl, save_jsonl,
                           split_by_user)
from rlhf_lib.labels import pairs_from_judgement, validate
from rlhf_lib.real_data import (DOLLY_CATEGORIES, apply_rules, format_instruction, hh_rlhf_to_judgements,
                                instructions_to_sft, load_hh_rlhf, load_instructions, split_dialogue)

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "samples"  # small files in the public schemas
HH = FIXTURES / "hh_rlhf_sample.jsonl"
ALPACA = FIXTURES / "alpaca_sample.json"
DOLLY = FIXTURES / "dolly_sample.jsonl"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hf-datasets-cache")  # keep the user's ~/.cache out of the tests


@pytest.fixture(scope="module")
def hh(cache):
    return load_hh_rlhf("train", HH, cache_dir=cache)


# ----------------------------------------------------------------------------------------------- HH-RLHF


def test_split_dialogue_keeps_everything():
    d = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant: Goodbye!"
    prompt, response = split_dialogue(d)
    assert prompt == "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant:"
    assert response == " Goodbye!" and prompt + response == d
    assert split_dialogue("\n\nHuman: no answer") is None


def test_hh_counts(hh):
    assert hh.counts == {"rows": 9, "skipped_malformed": 0, "skipped_prompt_mismatch": 1, "skipped_identical": 1,
                         "dedup_removed": 1, "pii_removed": 1, "pii_completion_removed": 1, "prompts": 3,
                         "judgements": 4}


def test_hh_judgements_are_k2_rankings_chosen_first(hh):
    rows = [json.loads(line) for line in HH.read_text().splitlines()]
    chosen = {r["chosen"] for r in rows}
    prompts = {r.prompt_id: r.prompt for r in hh.records}
    for j in hh.judgements:
        validate(j)
        assert j.ranks == [1, 2] and j.likert == [] and j.flags == [] and j.source == "human"
        assert pairs_from_judgement(j) == [(0, 1)]
        assert prompts[j.prompt_id] + j.completions[0] in chosen  # nothing lost or reordered
        assert not any(find_pii(c) for c in j.completions)


def test_hh_prompts(hh):
    assert all(r.category == "chat" and r.kind == "user_based" and r.task == {} for r in hh.records)
    assert all(r.prompt.endswith("\n\nAssistant:") for r in hh.records)
    assert len({r.prompt_id for r in hh.records}) == len(hh.records)
    snail = [r for r in hh.records if "snail" in r.prompt]
    assert len(snail) == 1 and sum(j.prompt_id == snail[0].prompt_id for j in hh.judgements) == 2
    text = " ".join(r.prompt for r in hh.records)
    assert "gulls" in text and "seals" not in text  # the near-duplicate prompt is gone
    assert "123-4567" not in text and "book club" not in text  # PII prompt, and the prompt left without judgements


def test_hh_ids_are_stable(hh, cache):
    again = load_hh_rlhf("train", HH, cache_dir=cache)
    assert [r.prompt_id for r in again.records] == [r.prompt_id for r in hh.records]
    assert [j.prompt_id for j in again.judgements] == [j.prompt_id for j in hh.judgements]


def test_hh_malformed_rows_and_schema_errors():
    rows = [{"chosen": "\n\nHuman: Hi", "rejected": "\n\nHuman: Hi"},
            {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away"}]
    data = hh_rlhf_to_judgements(rows)
    assert data.counts["skipped_malformed"] == 1 and data.counts["judgements"] == 1
    with pytest.raises(DatasetError, match="row 1 has no field 'rejected'.*HH-RLHF"):
        hh_rlhf_to_judgements([rows[1], {"chosen": "x"}])


def test_hh_limit(cache):
    assert load_hh_rlhf("train", HH, limit=2, cache_dir=cache).counts["rows"] == 2


# ----------------------------------------------------------------------------------------------- Alpaca, Dolly


def test_alpaca(cache):
    data = load_instructions(ALPACA, "alpaca", cache_dir=cache)
    assert data.counts == {"rows": 8, "skipped_empty": 1, "dedup_removed": 1, "pii_removed": 1, "kept": 5}
    assert data.judgements == []
    by_prompt = {r.prompt: r for r in data.records}
    frogs = [p for p in by_prompt if "frog named Bo" in p]
    assert len(frogs) == 1 and frogs[0].endswith("flying.")  # the first of the near-duplicates
    assert not any("@" in r.prompt for r in data.records)
    summary = by_prompt["Summarize the following text.\n\nInput:\nThe village of Oakford held its first cheese fair "
                        "in 1554. Farmers came from 12 towns."]
    assert summary.category == "summarization" and summary.demonstration.startswith("Oakford's")
    assert by_prompt["Give three tips for staying healthy."].category == "other"
    assert {r.category for r in data.records} <= set(CATEGORIES)
    assert all(isinstance(r, SFTRecord) and r.kind == "plain" for r in data.records)


def test_dolly_category_mapping(cache):
    data = load_instructions(DOLLY, "dolly", cache_dir=cache)
    assert data.counts["kept"] == 8
    rows = [json.loads(line) for line in DOLLY.read_text().splitlines()]
    assert [r.category for r in data.records] == [DOLLY_CATEGORIES[row["category"]] for row in rows]
    assert [r.category for r in data.records] == ["open_qa", "open_qa", "closed_qa", "classification",
                                                  "brainstorming", "extract", "summarization", "generation"]
    assert data.records[2].prompt == format_instruction(rows[2]["instruction"], rows[2]["context"])
    assert "\n\nInput:\nThe old mill" in data.records[2].prompt
    assert "Input" not in data.records[0].prompt


def test_instruction_records_fit_our_files_and_rules(tmp_path, cache):
    data = load_instructions(DOLLY, "dolly", cache_dir=cache)
    path = save_jsonl(tmp_path / "sft.jsonl", data.records)
    assert load_jsonl(path, SFTRecord) == data.records
    assert len({r.user_id for r in data.records}) == len(data.records)  # one pseudo user per distinct prompt
    splits = split_by_user(data.records, {"train": 0.75, "valid": 0.25}, seed=0)
    assert [len(v) for v in splits.values()] == [6, 2]


def test_wrong_schema_says_which_to_use(cache):
    with pytest.raises(DatasetError, match="no field 'output'.*schema='dolly'"):
        load_instructions(DOLLY, "alpaca", cache_dir=cache)
    with pytest.raises(DatasetError, match="no field 'context'.*schema='alpaca'"):
        load_instructions(ALPACA, "dolly", cache_dir=cache)
    with pytest.raises(ValueError, match="Unknown instruction schema 'vicuna'. Valid schemas: alpaca, dolly"):
        load_instructions(ALPACA, "vicuna")


def test_missing_local_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data file"):
        load_instructions(tmp_path / "nope.json", "alpaca")


def test_apply_rules_counts():
    prompts = ["Tell me about frogs and the ponds they live in, please.",
               "Tell me about frogs and the ponds they live in, thanks!", "Call 555-123-4567 for me."]
    records = [SFTRecord(prompt_id=f"s{i}", user_id=f"u{i}", category="other", kind="plain", prompt=p, task={},
                         demonstration="OK.") for i, p in enumerate(prompts)]
    kept, counts = apply_rules(records, prefix_chars=20)
    assert counts == {"in": 3, "dedup_removed": 1, "pii_removed": 1, "kept": 1} and kept == records[:1]
    rows = [{"instruction": p, "input": "", "output": "OK."} for p in prompts]
    assert instructions_to_sft(rows, "alpaca", prefix_chars=20).counts == {
        "rows": 3, "skipped_empty": 0, "dedup_removed": 1, "pii_removed": 1, "kept": 1}
