"""Tests of the "rank them yourself" form (rlhf_lib.widgets), driven headlessly through its Python API and through
the very ipywidgets objects a person clicks (dropdown values, checkboxes, the Submit button)."""
import json

import pytest

from rlhf_lib.labels import FLAGS, Judgement, append_judgement, load_judgements
from rlhf_lib.widgets import (UNSET, RankingItem, RankingWidget, items_for_ranking, merge_human_labels,
                              ranking_problem)


def items(n=3, k=3):
    return [RankingItem(prompt_id=f"p{i}", prompt=f"Prompt {i} <b>not bold</b>\nsecond line",
                        completions=[f"answer {c} to prompt {i}" for c in range(k + i)]) for i in range(n)]


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def simulated(pid="p0", k=3):
    return Judgement(prompt_id=pid, labeler_id="L01", completions=[f"c{i}" for i in range(k)],
                     ranks=list(range(1, k + 1)), likert=[4] * k, flags=[], timestamp=1.0)


# ----------------------------------------------------------------------------------------------- layout


def test_layout_shows_prompt_escaped_and_fresh_controls(tmp_path):
    wd = RankingWidget(items(), tmp_path / "h.jsonl")
    assert wd.current == 0 and not wd.done
    assert "Prompt 1 of 3" in wd.progress.value
    assert "&lt;b&gt;not bold&lt;/b&gt;" in wd.prompt_html.value and "pre-wrap" in wd.prompt_html.value
    assert len(wd.rank_dropdowns) == len(wd.likert_sliders) == len(wd.flag_checkboxes) == 3
    assert all(d.value == UNSET and d.label == "–" for d in wd.rank_dropdowns)
    assert [o[1] for o in wd.rank_dropdowns[0].options] == [UNSET, 1, 2, 3]
    assert all((s.min, s.max, s.value) == (1, 7, 4) for s in wd.likert_sliders)
    assert all(list(boxes) == list(FLAGS) and not any(b.value for b in boxes.values()) for boxes in wd.flag_checkboxes)
    assert wd.flag_checkboxes[0]["opinion_as_fact"].description == "opinion stated as fact"
    assert wd.last_saved.value == "" and wd.message == ""


def test_a_cell_ending_in_the_widget_displays_its_form(tmp_path, monkeypatch):
    """What a cell ending in `widget` shows: the form, top to bottom, with one row per completion of prompt 1."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    wd = RankingWidget(items(), tmp_path / "h.jsonl")
    wd._ipython_display_()
    assert shown == [wd.view]
    progress, last_saved, help_text, prompt, rows, buttons, status = wd.view.children
    assert "Prompt 1 of 3" in progress.value and "Ties allowed" in help_text.value
    assert "Prompt 0" in prompt.value and len(rows.children) == 3
    assert buttons.children == (wd.submit_button,) and wd.submit_button.description == "Submit"


# ----------------------------------------------------------------------------------------------- submitting


def test_api_submit_writes_a_valid_human_judgement(tmp_path):
    path = tmp_path / "rm" / "h.jsonl"
    wd = RankingWidget(items(), path, labeler_id="human:alice")
    for i, r in enumerate([2, 1, 3]):
        wd.set_rank(i, r)
    wd.set_likert(1, 7)
    wd.set_likert(2, 1)
    wd.set_flag(2, "hallucination")
    assert wd.submit() is not None
    [j] = load_judgements(path)
    assert (j.prompt_id, j.labeler_id, j.source) == ("p0", "human:alice", "human")
    assert j.completions == items()[0].completions
    assert j.ranks == [2, 1, 3] and j.likert == [4, 7, 1]
    assert j.flags[2]["hallucination"] and sum(sum(d.values()) for d in j.flags) == 1
    assert j.timestamp > 1e9
    assert wd.message.startswith("Saved.") and "prompt 2 of 3" in wd.message
    # the saved ranking stays visible above the next prompt, best first
    summary = wd.last_saved.value
    assert "Saved your ranking of prompt p0" in summary and "hallucination" in summary
    assert summary.index("answer 1 to prompt 0") < summary.index("answer 0 to prompt 0")


def test_clicking_the_real_widgets_is_the_same_path(tmp_path):
    path = tmp_path / "h.jsonl"
    wd = RankingWidget(items(k=4), path)
    for dropdown, r in zip(wd.rank_dropdowns, [1, 1, 2, 3]):  # a tie for best
        dropdown.value = r
    wd.likert_sliders[3].value = 2
    wd.flag_checkboxes[3]["fails_instruction"].value = True
    wd.flag_checkboxes[0]["moral_judgement"].value = True
    wd.submit_button.click()
    [j] = load_judgements(path)
    assert j.ranks == [1, 1, 2, 3] and j.likert == [4, 4, 4, 2]
    assert j.flags[3]["fails_instruction"] and j.flags[0]["moral_judgement"] and not j.flags[1]["moral_judgement"]
    # the next item is shown with fresh controls
    assert wd.current == 1 and "Prompt 2 of 3" in wd.progress.value and len(wd.rank_dropdowns) == 5
    assert all(d.value == UNSET for d in wd.rank_dropdowns) and all(s.value == 4 for s in wd.likert_sliders)
    assert not any(b.value for boxes in wd.flag_checkboxes for b in boxes.values())


@pytest.mark.parametrize("ranks,match", [
    ([1, None, 2], "Give every completion a rank (completion 2 has none)."),
    ([None, None, 1], "(completions 1 and 2 have none)"),
    ([1, 1, 3], "ranks must not skip a number"),
    ([2, 2, 3], "must have rank 1"),
])
def test_invalid_submissions_write_nothing_and_say_why(tmp_path, ranks, match):
    path = tmp_path / "h.jsonl"
    wd = RankingWidget(items(), path)
    for i, r in enumerate(ranks):
        wd.set_rank(i, r)
    wd.submit_button.click()
    assert match in wd.message and match in wd.status.value.replace("&#x27;", "'")
    assert not path.exists() and wd.current == 0
    assert [d.value for d in wd.rank_dropdowns] == [UNSET if r is None else r for r in ranks]  # kept for fixing


def test_skip_message_suggests_the_dense_fix():
    assert "e.g. 1, 1, 2" in ranking_problem([1, 1, 3])
    assert ranking_problem([1, 2, 2, 3]) is None and ranking_problem([1, 1, 1]) is None


def test_api_rejects_bad_input_clearly(tmp_path):
    wd = RankingWidget(items(), tmp_path / "h.jsonl")
    with pytest.raises(ValueError, match=r"ranks are 1\.\.3"):
        wd.set_rank(0, 4)
    with pytest.raises(IndexError, match="has 3 completions"):
        wd.set_rank(3, 1)
    with pytest.raises(ValueError, match="1 = bad, 7 = great"):
        wd.set_likert(0, 8)
    with pytest.raises(ValueError, match="unknown flag 'rude'"):
        wd.set_flag(0, "rude")
    with pytest.raises(ValueError, match="2 to 9"):
        RankingWidget([RankingItem("p", "q", ["only one"])], tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="appears twice"):
        RankingWidget(items(1) + items(1), tmp_path / "x.jsonl")


def label_current(wd, ranks=None):
    k = len(wd.rank_dropdowns)
    for i, r in enumerate(ranks or range(1, k + 1)):
        wd.set_rank(i, r)
    assert wd.submit() is not None, wd.message


def test_done_state_after_the_last_item(tmp_path):
    path = tmp_path / "h.jsonl"
    wd = RankingWidget(items(2), path)
    label_current(wd)
    label_current(wd, [1, 2, 2, 2])
    assert wd.done and wd.current is None and "All done" in wd.message
    assert wd.submit_button.disabled and wd.rows.children == ()
    assert [j.ranks for j in load_judgements(path)] == [[1, 2, 3], [1, 2, 2, 2]]
    wd.submit()  # a stray click writes nothing more
    assert len(lines(path)) == 2 and "nothing left" in wd.message
    with pytest.raises(RuntimeError, match="All items are labelled"):
        wd.set_rank(0, 1)


# ----------------------------------------------------------------------------------------------- resume, merge


def test_resume_skips_items_this_labeler_did(tmp_path):
    path = tmp_path / "h.jsonl"
    append_judgement(path, simulated("p1"))  # another labeler's judgement of p1 does not count
    wd = RankingWidget(items(), path)
    label_current(wd)
    again = RankingWidget(items(), path)  # e.g. after a kernel restart
    assert again.current == 1 and "Prompt 2 of 3" in again.progress.value and "Resuming" in again.message
    label_current(again)
    label_current(again)
    assert RankingWidget(items(), path).done
    other = RankingWidget(items(), path, labeler_id="human:bob")  # a second person starts from the beginning
    assert other.current == 0
    assert sorted(j.prompt_id for j in load_judgements(path) if j.labeler_id == "human:you") == ["p0", "p1", "p2"]


def test_merge_human_labels(tmp_path):
    path = tmp_path / "h.jsonl"
    sims = [simulated("p0"), simulated("p1")]
    assert merge_human_labels(sims, path) == sims  # no human labels yet
    wd = RankingWidget(items(1), path)
    label_current(wd, [1, 1, 2])
    merged = merge_human_labels(sims, path)
    assert merged[:2] == sims and len(merged) == 3
    assert merged[2].source == "human" and merged[2].ranks == [1, 1, 2]


def test_items_from_a_samples_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    samples = tmp_path / "smoke" / "rm" / "samples_train.jsonl"
    samples.parent.mkdir(parents=True)
    recs = [{"prompt_id": f"s{i}", "prompt": f"q{i}", "completions": ["a", "b", "c"]} for i in range(4)]
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    got = items_for_ranking("smoke", 2)
    assert got == [RankingItem("s0", "q0", ["a", "b", "c"]), RankingItem("s1", "q1", ["a", "b", "c"])]
    samples.write_text('{"prompt_id": "s0"}\n')
    with pytest.raises(ValueError, match="line 1: expected a JSON object with prompt_id, prompt and completions"):
        items_for_ranking("smoke", 2)
