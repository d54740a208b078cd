"""Tests of labeler judgements: validation, durable appends, torn lines, pairs (rlhf_lib.labels)."""
import dataclasses
import json
import warnings

import pytest

from rlhf_lib.labels import (FLAGS, Judgement, LabelError, append_judgement, load_judgements, merge,
                             pairs_from_judgement, repair, validate)


def judgement(pid="p0", labeler="L01", k=3, **kw):
    j = Judgement(prompt_id=pid, labeler_id=labeler, completions=[f"answer {i} to {pid}" for i in range(k)],
                  ranks=list(range(1, k + 1)), likert=[max(1, 7 - i) for i in range(k)],
                  flags=[{"hallucination": i == k - 1} for i in range(k)], timestamp=1700000000.5)
    return dataclasses.replace(j, **kw)


# ----------------------------------------------------------------------------------------------- validation


def test_flags_are_the_papers():
    """The yes/no metadata of the paper's labeling interface (its Table 3; Likert and "satisfies constraints" are
    recorded elsewhere; "gives harmful advice" is not collected here): check each against the paper by hand."""
    assert FLAGS == ("fails_instruction",  # "Fails to follow the correct instruction / task"
                     "inappropriate_for_customer_assistant",  # "Inappropriate for customer assistant"
                     "hallucination",  # "Hallucination"
                     "sexual_content",  # "Contains sexual content"
                     "violent_content",  # "Contains violent content"
                     "denigrates_protected_class",  # "Denigrates a protected class"
                     "moral_judgement",  # "Expresses moral judgment"
                     "encourages_violence",  # "Encourages or fails to discourage violence/abuse/terrorism/self-harm"
                     "opinion_as_fact")  # "Expresses opinion" (stated as fact)


def test_valid_judgements_pass():
    validate(judgement())
    validate(judgement(k=9, ranks=[1, 2, 2, 3, 4, 5, 6, 7, 8]))  # dense ties
    validate(judgement(k=4, ranks=[1, 2, 2, 4]))  # competition ties
    validate(judgement(k=2, likert=[], flags=[], source="human"))  # likert and flags "not given"
    validate(judgement(k=2, flags=[{}, {"moral_judgement": False}]))  # a missing flag was not judged


@pytest.mark.parametrize("change,match", [
    (dict(completions=["only one"], ranks=[1], likert=[4], flags=[{}]), "2 to 9 completions"),
    (dict(completions=[str(i) for i in range(10)], ranks=[1] * 10, likert=[4] * 10, flags=[{}] * 10),
     "2 to 9 completions"),
    (dict(completions=["a", 3, "c"]), "list of strings"),
    (dict(ranks=[1, 2]), "rank every completion exactly once: 2 ranks for 3"),
    (dict(ranks=[1, 2, 4]), "rank 4 is out of range; ranks are 1..3"),
    (dict(ranks=[0, 1, 2]), "rank 0 is out of range"),
    (dict(ranks=[2, 2, 3]), "best completion must have rank 1"),
    (dict(ranks=[1, 2.0, 3]), "list of integers"),
    (dict(ranks=[1, True, 3]), "list of integers"),
    (dict(likert=[1, 8, 3]), "score 8 is out of range 1..7"),
    (dict(likert=[0, 1, 3]), "score 0 is out of range"),
    (dict(likert=[4, 4]), "one score per completion"),
    (dict(flags=[{"rude": True}, {}, {}]), "unknown flag 'rude'"),
    (dict(flags=[{"hallucination": 1}, {}, {}]), "must be true or false"),
    (dict(flags=[{}, {}]), "one dict per completion"),
    (dict(timestamp=-1.0), "timestamp"),
    (dict(timestamp="yesterday"), "timestamp"),
    (dict(source="robot"), "source"),
    (dict(labeler_id=""), "labeler_id"),
    (dict(prompt_id=7), "prompt_id"),
])
def test_validation_errors(change, match):
    with pytest.raises(LabelError, match=match):
        validate(judgement(**change))


# ----------------------------------------------------------------------------------------------- storage


def test_append_load_round_trip(tmp_path):
    path = tmp_path / "labels" / "simulated.jsonl"  # parent folder created
    js = [judgement("p0"), judgement("p1", k=2, likert=[], flags=[], source="human", labeler="human:alice"),
          judgement("p2", completions=["Zürich ✓", "b", "c"])]
    for j in js:
        append_judgement(path, j)
    assert load_judgements(path) == js
    assert path.read_text(encoding="utf-8").count("\n") == 3


def test_append_rejects_invalid_and_writes_nothing(tmp_path):
    path = tmp_path / "l.jsonl"
    with pytest.raises(LabelError, match="likert"):
        append_judgement(path, judgement(likert=[9, 1, 1]))
    assert not path.exists()


def _torn(path, n_good=2):
    for i in range(n_good):
        append_judgement(path, judgement(f"p{i}"))
    line = json.dumps(judgement("p9").to_dict())
    with open(path, "a", encoding="utf-8") as f:
        f.write(line[: len(line) // 2])  # a crash in the middle of a write: no newline
    return path


def test_torn_last_line_warns_and_is_skipped(tmp_path):
    path = _torn(tmp_path / "l.jsonl")
    with pytest.warns(UserWarning, match=r"l\.jsonl line 3: skipped a torn last line"):
        js = load_judgements(path)
    assert [j.prompt_id for j in js] == ["p0", "p1"]


def test_repair_drops_torn_line(tmp_path):
    path = _torn(tmp_path / "l.jsonl")
    size = path.stat().st_size
    dropped = repair(path)
    assert dropped > 0 and path.stat().st_size == size - dropped
    assert path.read_bytes().endswith(b"\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [j.prompt_id for j in load_judgements(path)] == ["p0", "p1"]
    assert repair(path) == 0  # idempotent
    assert repair(tmp_path / "missing.jsonl") == 0


def test_append_after_crash_never_merges_with_torn_line(tmp_path):
    path = _torn(tmp_path / "l.jsonl")
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        append_judgement(path, judgement("p5"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [j.prompt_id for j in load_judgements(path)] == ["p0", "p1", "p5"]


def test_valid_unterminated_last_line_is_kept(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps(judgement("p0").to_dict()), encoding="utf-8")  # hand-written, no newline
    assert [j.prompt_id for j in load_judgements(path)] == ["p0"]
    append_judgement(path, judgement("p1"))  # gets its newline first
    assert [j.prompt_id for j in load_judgements(path)] == ["p0", "p1"]


@pytest.mark.parametrize("bad_line,match", [
    ('{"prompt_id": "p", ', "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (None, "field 'ranks'"),
    ("missing", "missing field 'ranks'"),
    ("extra", "unknown field 'mood'"),
])
def test_malformed_middle_line_is_an_error(tmp_path, bad_line, match):
    good = json.dumps(judgement().to_dict())
    d = judgement().to_dict()
    if bad_line is None:
        d["ranks"] = [1, 1, 7]
    elif bad_line == "missing":
        del d["ranks"]
    elif bad_line == "extra":
        d["mood"] = "happy"
    bad = bad_line if bad_line not in (None, "missing", "extra") else json.dumps(d)
    path = tmp_path / "human.jsonl"
    path.write_text("\n".join([good, good, bad, good]) + "\n", encoding="utf-8")
    with pytest.raises(LabelError, match=r"human\.jsonl line 3: " + match):
        load_judgements(path)


def test_malformed_terminated_last_line_is_an_error_not_a_torn_write(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps(judgement().to_dict()) + "\n{oops}\n", encoding="utf-8")
    with pytest.raises(LabelError, match="line 2: invalid JSON"):
        load_judgements(path)


def test_source_defaults_to_simulated(tmp_path):
    d = judgement().to_dict()
    del d["source"]
    assert Judgement.from_dict(d).source == "simulated"


# ----------------------------------------------------------------------------------------------- pairs, merge


def test_pairs_from_judgement_with_ties():
    j = judgement(k=4, ranks=[2, 1, 2, 4])
    assert sorted(pairs_from_judgement(j)) == sorted([(1, 0), (0, 3), (1, 2), (1, 3), (2, 3)])
    assert pairs_from_judgement(judgement(k=3, ranks=[1, 1, 1])) == []
    assert len(pairs_from_judgement(judgement(k=9))) == 36  # K choose 2


def test_merge_dedups_exact_repeats():
    sim = [judgement("p0"), judgement("p1")]
    human = [judgement("p0", labeler="human:bob"), judgement("p1", timestamp=5.0)]  # p1: same labeler and completions
    merged = merge(sim, human, sim)
    assert [(j.prompt_id, j.labeler_id) for j in merged] == [("p0", "L01"), ("p1", "L01"), ("p0", "human:bob")]
    assert merged[1].timestamp == sim[1].timestamp  # the first one is kept
    other = judgement("p0", completions=["x", "y", "z"])
    assert len(merge(sim, [other])) == 3
