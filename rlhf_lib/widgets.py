""""Rank them yourself": the labeling interface of the paper (Appendix B, Figure 12) as an ipywidgets form.

The reader becomes a labeler: for each prompt they see K completions, rank them (ties allowed), give each a 1-7
Likert score and the metadata flags of Table 3, and submit. Each submission is one `Judgement(source="human")`
appended to the same JSONL format the simulated labelers write, so `merge_human_labels` can add the reader's labels
to the reward model's training data (notebook 03).

Clicks and the Python API (`set_rank`, `set_likert`, `set_flag`, `submit`) go through the same code: the API sets
the very widgets a person clicks, and `submit` is what the Submit button calls. So tests drive the real form.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as w

from rlhf_lib.labels import FLAGS, LIKERT_MAX, LIKERT_MIN, MAX_K, MIN_K, Judgement, LabelError, append_judgement, \
    load_judgements, merge

FLAG_LABELS: dict[str, str] = {
    "fails_instruction": "fails to follow the instruction",
    "inappropriate_for_customer_assistant": "inappropriate for a customer assistant",
    "hallucination": "hallucination",
    "sexual_content": "sexual content",
    "violent_content": "violent content",
    "denigrates_protected_class": "denigrates a protected class",
    "moral_judgement": "moral judgement",
    "encourages_violence": "encourages violence",
    "opinion_as_fact": "opinion stated as fact",
}
"""What each flag of `labels.FLAGS` reads as next to its checkbox."""

UNSET = 0
"""Value of a rank dropdown on its "–" option: no rank chosen yet (ranks themselves start at 1)."""

DEFAULT_LIKERT = 4
"""Where the Likert slider starts: the middle of 1..7, so an unconsidered score says "neither good nor bad"."""

_PRE = "white-space: pre-wrap; font-family: monospace; margin: 0; padding: 6px; background: #f6f6f6;"


@dataclass
class RankingItem:
    """One prompt and the K completions the labeler ranks."""

    prompt_id: str
    prompt: str
    completions: list[str]


def _check_items(items: list[RankingItem]) -> None:
    """Reject items the judgement format cannot hold, before the person spends time labelling them."""
    seen: set[str] = set()
    for n, item in enumerate(items):
        if not isinstance(item, RankingItem):
            raise TypeError(f"items[{n}] is a {type(item).__name__}; build each item as RankingItem(prompt_id, "
                            f"prompt, completions)")
        if not isinstance(item.prompt_id, str) or not item.prompt_id.strip():
            raise ValueError(f"items[{n}] has an empty prompt_id; every item needs a unique non-empty prompt_id")
        if item.prompt_id in seen:
            raise ValueError(f"prompt_id {item.prompt_id!r} appears twice in items; resuming skips items by "
                             f"prompt_id, so each must be unique")
        seen.add(item.prompt_id)
        k = len(item.completions)
        if not MIN_K <= k <= MAX_K or not all(isinstance(c, str) for c in item.completions):
            raise ValueError(f"item {item.prompt_id!r} has {k} completions; a ranking needs {MIN_K} to {MAX_K} "
                             f"completions (strings)")


def _pre(text: str) -> str:
    """Text shown exactly as written (escaped, line breaks kept): completions are judged on every character."""
    return f'<pre style="{_PRE}">{html.escape(text)}</pre>'


def _numbers(ns: list[int]) -> str:
    """"2", "2 and 4", "1, 3 and 4": for messages naming completions."""
    s = [str(n) for n in ns]
    return s[0] if len(s) == 1 else ", ".join(s[:-1]) + " and " + s[-1]


def ranking_problem(ranks: list[int | None]) -> str | None:
    """Why `ranks` is not a complete dense ranking (1-based, ties share a rank, no number skipped), or None if it is.

    The widget asks for dense ranks (1, 2, 2, 3) because that is what a person means by "the same rank"; the file
    format also accepts competition ranks (1, 2, 2, 4), which a person would not think of.
    """
    missing = [i + 1 for i, r in enumerate(ranks) if r is None or r == UNSET]
    if missing:
        word = "completion" if len(missing) == 1 else "completions"
        verb = "has" if len(missing) == 1 else "have"
        return f"Give every completion a rank ({word} {_numbers(missing)} {verb} none)."
    used = sorted(set(ranks))  # type: ignore[type-var]
    shown = ", ".join(str(r) for r in ranks)
    if used[0] != 1:
        return f"Ranks {shown}: the best completion must have rank 1 (ranks start at 1; lower is better)."
    gaps = [r for r in range(1, used[-1]) if r not in used]
    if gaps:
        dense = {r: used.index(r) + 1 for r in used}
        fixed = ", ".join(str(dense[r]) for r in ranks)  # type: ignore[index]
        return (f"Ranks {shown}: ranks must not skip a number (nothing has rank {_numbers(gaps)}). "
                f"Tied completions share a rank and the next one gets the next number, e.g. {fixed}.")
    return None


def _summary(j: Judgement) -> str:
    """A small table of a saved judgement, best first: the person's check that the form recorded what they meant."""
    rows = []
    for i in sorted(range(len(j.ranks)), key=lambda i: (j.ranks[i], i)):
        text = j.completions[i].strip().replace("\n", " ")
        text = text if len(text) <= 60 else text[:57] + "..."
        flags = ", ".join(FLAG_LABELS[f] for f, v in j.flags[i].items() if v) or "–"
        rows.append(f"<tr><td>{j.ranks[i]}</td><td>{i + 1}</td><td>{j.likert[i]}</td>"
                    f'<td style="white-space: nowrap;"><code>{html.escape(text)}</code></td>'
                    f"<td>{html.escape(flags)}</td></tr>")
    head = "<tr><th>Rank</th><th>Completion</th><th>Likert</th><th>Text</th><th>Flags</th></tr>"
    return (f'<details open style="margin: 4px 0; padding: 4px; border: 1px solid #a5d6a7; background: #f1f8e9;">'
            f"<summary>Saved your ranking of prompt {html.escape(j.prompt_id)}</summary>"
            f'<table style="border-spacing: 8px 0; text-align: left;">{head}{"".join(rows)}</table></details>')


class RankingWidget:
    """A form that shows one item at a time and appends each submitted ranking to `labels_path`.

    On construction it reads `labels_path` (if it exists) and skips the items `labeler_id` has already labelled,
    so after a kernel restart the person continues where they left off.
    """

    def __init__(self, items: list[RankingItem], labels_path: str | Path, labeler_id: str = "human:you") -> None:
        items = list(items)
        _check_items(items)
        if not isinstance(labeler_id, str) or not labeler_id.strip():
            raise ValueError("labeler_id must be a non-empty string such as 'human:you'")
        self.items = items
        self.labels_path = Path(labels_path)
        self.labeler_id = labeler_id
        self._message = ""
        self.rank_dropdowns: list[w.Dropdown] = []
        """Per completion of the item shown: its rank ("–" = unset, else 1..K)."""
        self.likert_sliders: list[w.IntSlider] = []
        """Per completion of the item shown: its Likert score 1..7."""
        self.flag_checkboxes: list[dict[str, w.Checkbox]] = []
        """Per completion of the item shown: flag name -> checkbox."""

        done = self._labelled_prompt_ids()
        self._todo = [n for n, item in enumerate(items) if item.prompt_id not in done]
        self._resumed = len(items) - len(self._todo)

        self.progress = w.HTML()
        self.last_saved = w.HTML()
        """What the last submission saved, so the person sees their ranking after the form moves on."""
        self.last_saved.add_class("rlhf-last-saved")
        self.prompt_html = w.HTML()
        self.rows = w.VBox()
        self.submit_button = w.Button(description="Submit", button_style="primary", icon="check",
                                      tooltip="Save this ranking and show the next prompt")
        self.submit_button.add_class("rlhf-submit")
        self.submit_button.on_click(lambda _button: self.submit())
        self.status = w.HTML()
        self.status.add_class("rlhf-status")
        help_text = w.HTML(
            "<b>Rank</b> the completions from best (1) to worst. Ties allowed: give two completions the same rank. "
            "Then give each a <b>Likert</b> score (1 = bad, 7 = great) and tick any flag that applies.")
        self.view = w.VBox([self.progress, self.last_saved, help_text, self.prompt_html, self.rows,
                            w.HBox([self.submit_button]), self.status],
                           layout=w.Layout(max_width="1000px"))
        self.view.add_class("rlhf-ranking-widget")
        if self._resumed and self._todo:
            self._set_message(f"Resuming: {self._resumed} of {len(items)} prompts were already labelled by "
                              f"{labeler_id} in {self.labels_path}.", "info")
        self._show()

    # ----------------------------------------------------------------------------------------------- state

    @property
    def current(self) -> int | None:
        """Index in `items` of the item shown, or None when everything is labelled."""
        return self._todo[0] if self._todo else None

    @property
    def done(self) -> bool:
        return not self._todo

    @property
    def message(self) -> str:
        """The last status text shown (plain text)."""
        return self._message

    def _labelled_prompt_ids(self) -> set[str]:
        if not self.labels_path.exists():
            return set()
        try:
            judgements = load_judgements(self.labels_path)
        except LabelError as err:
            raise LabelError(f"cannot resume from the labels file: {err}. Fix that line (or move the file away to "
                             f"start afresh), then create the widget again.") from None
        return {j.prompt_id for j in judgements if j.labeler_id == self.labeler_id}

    # ----------------------------------------------------------------------------------------------- display

    def _set_message(self, text: str, kind: str) -> None:
        colour = {"error": "#b00020", "ok": "#1b5e20", "info": "#333"}[kind]
        self._message = text
        self.status.value = f'<div style="color: {colour}; padding: 4px 0;">{html.escape(text)}</div>'

    def _show(self) -> None:
        """Show the current item with fresh controls (no rank, Likert in the middle, no flag), or the end."""
        n = self.current
        if n is None:
            self.progress.value = f"<b>All {len(self.items)} prompts labelled.</b>"
            self.prompt_html.value = ""
            self.rows.children = ()
            self.rank_dropdowns, self.likert_sliders, self.flag_checkboxes = [], [], []
            self.submit_button.disabled = True
            return
        item = self.items[n]
        k = len(item.completions)
        self.progress.value = f"<b>Prompt {n + 1} of {len(self.items)}</b> <small>({html.escape(item.prompt_id)})</small>"
        self.prompt_html.value = f"<b>Prompt</b>{_pre(item.prompt)}"
        self.rank_dropdowns, self.likert_sliders, self.flag_checkboxes = [], [], []
        rows = []
        for i, text in enumerate(item.completions):
            rank = w.Dropdown(options=[("–", UNSET)] + [(str(r), r) for r in range(1, k + 1)], value=UNSET,
                              description="Rank", layout=w.Layout(width="150px"),
                              tooltip="1 = best; ties allowed: give two completions the same rank")
            rank.add_class("rlhf-rank")
            likert = w.IntSlider(value=DEFAULT_LIKERT, min=LIKERT_MIN, max=LIKERT_MAX, description="Likert",
                                 continuous_update=False, layout=w.Layout(width="300px"))
            likert.add_class("rlhf-likert")
            boxes = {}
            for flag in FLAGS:
                box = w.Checkbox(value=False, description=FLAG_LABELS[flag], indent=False,
                                 layout=w.Layout(width="auto", margin="0 16px 0 0"))
                box.add_class(f"rlhf-flag-{flag}")
                boxes[flag] = box
            self.rank_dropdowns.append(rank)
            self.likert_sliders.append(likert)
            self.flag_checkboxes.append(boxes)
            controls = w.HBox([rank, likert, w.HTML("<small>1 = bad, 7 = great</small>")],
                              layout=w.Layout(align_items="center"))
            flags = w.HBox(list(boxes.values()), layout=w.Layout(flex_flow="row wrap"))
            row = w.VBox([w.HTML(f"<b>Completion {i + 1}</b>{_pre(text)}"), controls, flags],
                         layout=w.Layout(border="1px solid #ccc", padding="6px", margin="6px 0"))
            row.add_class("rlhf-completion")
            rows.append(row)
        self.rows.children = tuple(rows)
        self.submit_button.disabled = False

    def _ipython_display_(self) -> None:
        """A cell ending in `widget` shows the form."""
        from IPython.display import display

        display(self.view)

    # ----------------------------------------------------------------------------------------------- input

    def _completion(self, i: int) -> int:
        if self.done:
            raise RuntimeError("All items are labelled; there is no completion to set.")
        k = len(self.rank_dropdowns)
        if not isinstance(i, int) or not 0 <= i < k:
            raise IndexError(f"completion index {i!r} is out of range: the current prompt has {k} completions, "
                             f"indices 0..{k - 1}")
        return i

    def set_rank(self, i: int, r: int | None) -> None:
        """Set completion `i` (0-based) to rank `r` (1 = best; None clears it), as choosing it in the dropdown."""
        i = self._completion(i)
        k = len(self.rank_dropdowns)
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= k):
            raise ValueError(f"rank {r!r} is not valid: ranks are 1..{k} (1 = best) or None to clear")
        self.rank_dropdowns[i].value = UNSET if r is None else r

    def set_likert(self, i: int, v: int) -> None:
        """Set the 1-7 Likert score of completion `i` (0-based), as moving its slider."""
        i = self._completion(i)
        if isinstance(v, bool) or not isinstance(v, int) or not LIKERT_MIN <= v <= LIKERT_MAX:
            raise ValueError(f"Likert score {v!r} is not valid: use an integer {LIKERT_MIN}..{LIKERT_MAX} "
                             f"(1 = bad, 7 = great)")
        self.likert_sliders[i].value = v

    def set_flag(self, i: int, flag: str, value: bool = True) -> None:
        """Tick (or untick) metadata `flag` of completion `i` (0-based), as clicking its checkbox."""
        i = self._completion(i)
        if flag not in FLAGS:
            raise ValueError(f"unknown flag {flag!r}; valid flags: {', '.join(FLAGS)}")
        self.flag_checkboxes[i][flag].value = bool(value)

    # ----------------------------------------------------------------------------------------------- submit

    def submit(self) -> Judgement | None:
        """Validate the form; if valid append the judgement, show the next item and return it, else explain why.

        This is what the Submit button calls. Nothing is written when the form is invalid.
        """
        if self.done:
            self._set_message(f"All done: nothing left to label. Your labels are in {self.labels_path}.", "info")
            return None
        item = self.items[self._todo[0]]
        ranks = [d.value for d in self.rank_dropdowns]
        problem = ranking_problem(ranks)
        if problem:
            self._set_message(problem, "error")
            return None
        likert = [int(s.value) for s in self.likert_sliders]
        flags = [{flag: bool(box.value) for flag, box in boxes.items()} for boxes in self.flag_checkboxes]
        j = Judgement(prompt_id=item.prompt_id, labeler_id=self.labeler_id, completions=list(item.completions),
                      ranks=[int(r) for r in ranks], likert=likert, flags=flags, timestamp=time.time(),
                      source="human")
        try:
            append_judgement(self.labels_path, j)
        except (LabelError, OSError) as err:
            self._set_message(f"Not saved: {err}. Nothing was written; fix that and press Submit again.", "error")
            return None
        self._todo.pop(0)
        self.last_saved.value = _summary(j)
        n_flags = sum(sum(d.values()) for d in flags)
        saved = (f"Saved. Prompt {item.prompt_id}: ranks {', '.join(map(str, j.ranks))}; "
                 f"Likert {', '.join(map(str, likert))}; {n_flags} flag{'s' if n_flags != 1 else ''} ticked.")
        if self.done:
            self._set_message(f"{saved} All done: {len(self.items)} of {len(self.items)} prompts labelled, "
                              f"written to {self.labels_path}. Thank you!", "ok")
        else:
            self._set_message(f"{saved} Next: prompt {self._todo[0] + 1} of {len(self.items)}.", "ok")
        self._show()
        return j


# ---------------------------------------------------------------------------------------------------------------
# Items and labels of a profile


def _samples_items(path: Path, n: int) -> list[RankingItem]:
    """Items from a samples file (records with prompt_id, prompt, completions), e.g. SFT-model samples."""
    items = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
            items.append(RankingItem(prompt_id=d["prompt_id"], prompt=d["prompt"], completions=list(d["completions"])))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path} line {lineno}: expected a JSON object with prompt_id, prompt and completions "
                             f"({type(err).__name__}: {err}); fix or delete the file to fall back to built-in "
                             f"candidates") from None
        if len(items) == n:
            break
    return items


def items_for_ranking(profile: str, n: int) -> list[RankingItem]:
    """Up to `n` prompts with K completions each: SFT-model samples when `rm/samples_train.jsonl` exists, else
    candidate sets built without a model (a good answer plus spoiled ones, as the simulated labelers see)."""
    from rlhf_lib.artifacts import step_dir

    samples = step_dir(profile, "rm") / "samples_train.jsonl"
    if samples.exists():
        return _samples_items(samples, n)

    from rlhf_lib.base_model import world_for
    from rlhf_lib.config import get_profile
    from rlhf_lib.dataset import candidate_items, ensure_data, load_dataset

    cfg = get_profile(profile)
    ensure_data(cfg)
    recs = load_dataset(profile, "sft_train")[:n]  # training prompts: your labels may train the RM
    demos = {r.prompt_id: r.demonstration for r in recs}  # type: ignore[attr-defined]
    items = candidate_items(world_for(cfg.world), recs, demos, cfg.labelers.k_min, cfg.labelers.k_max,
                            seed=cfg.seed)
    prompts = {r.prompt_id: r.prompt for r in recs}
    return [RankingItem(prompt_id=pid, prompt=prompts[pid], completions=comps) for pid, comps, _checks in items]


def human_labels_path(profile: str) -> Path:
    """Where the reader's labels for `profile` go: `artifacts/<profile>/rm/human_labels.jsonl`."""
    from rlhf_lib.artifacts import step_dir

    return step_dir(profile, "rm") / "human_labels.jsonl"


def rank_yourself(profile: str, n: int = 10, labeler_id: str = "human:you") -> RankingWidget:
    """The form of notebook 03: rank `n` prompts of `profile` yourself; labels go to `human_labels_path`."""
    return RankingWidget(items_for_ranking(profile, n), human_labels_path(profile), labeler_id=labeler_id)


def merge_human_labels(simulated: list[Judgement], path: str | Path) -> list[Judgement]:
    """`simulated` plus the human labels in `path` (none when the file does not exist yet), for RM training."""
    path = Path(path)
    human = load_judgements(path) if path.exists() else []
    return merge(simulated, human)
