"""The paper's dataset: record types, their JSONL files, and the rules that shaped the prompts (notebook 01).

InstructGPT's prompts came from users of the OpenAI API playground. Section 3.2 and Appendix A of Ouyang et al. (2022)
list what was done to them before any labeler saw them, and each rule here is one small pure function:

- prompts sharing a long common prefix are near-duplicates: keep one (`dedup_by_prefix`);
- at most 200 prompts per user, so a few heavy users do not define the distribution (`cap_per_user`);
- train/valid/test splits by *user*, so a user's style never leaks from training into evaluation (`split_by_user`);
- prompts with personally identifiable information are removed (`find_pii`, `filter_pii`).

Records are plain dataclasses stored one per line in JSONL; `load_jsonl` checks every field of every line, so a bad
file fails at load time with the file, line and field, not three notebooks later with a KeyError.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rlhf_lib.artifacts import atomic_path
from rlhf_lib.tasks import CATEGORIES, KINDS  # Table 1, and the three kinds of prompt

# Table 6 of the paper ("Dataset sizes, in terms of number of prompts"), labeler- and customer-written prompts together.
PAPER_DATASET_SIZES: dict[str, dict[str, int]] = {
    "sft": {"train": 12725, "valid": 1653},
    "rm": {"train": 33207, "valid": 17887},
    "ppo": {"train": 31144, "valid": 16185},
}


class DatasetError(ValueError):
    """A dataset file or record breaks the schema; the message says where and what."""


# ---------------------------------------------------------------------------------------------------------------
# Records


def short_repr(value: Any) -> str:
    """A value as an error message shows it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_fields(record: Any) -> None:
    """Raise DatasetError on the first field of `record` that breaks the schema."""
    for name in ("prompt_id", "user_id", "prompt") + (("demonstration",) if isinstance(record, SFTRecord) else ()):
        value = getattr(record, name)
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(f"field {name!r} must be a non-empty string, got {short_repr(value)}")
    if not isinstance(record.category, str) or record.category not in CATEGORIES:
        raise DatasetError(f"field 'category' must be one of {', '.join(CATEGORIES)}; got {short_repr(record.category)}")
    if not isinstance(record.kind, str) or record.kind not in KINDS:
        raise DatasetError(f"field 'kind' must be one of {', '.join(KINDS)}; got {short_repr(record.kind)}")
    if not isinstance(record.task, dict):
        raise DatasetError(f"field 'task' must be a JSON object (dict), got {short_repr(record.task)}")


R = TypeVar("R", bound="PromptRecord")


@dataclass
class PromptRecord:
    """One prompt as the labelers and the models see it. Checked on creation, so an invalid record cannot exist."""

    prompt_id: str
    """Unique id."""
    user_id: str
    """Who wrote it: the unit of `cap_per_user` and `split_by_user`."""
    category: str
    """Use case, a key of `CATEGORIES`."""
    kind: str
    """One of `KINDS`."""
    prompt: str
    """The text given to the model."""
    task: dict
    """Serialised task, opaque here (the checkers read it); {} for real data."""

    def __post_init__(self) -> None:
        _check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[R], d: Any) -> R:
        """Build a record from a dict, rejecting missing and unknown fields (a typo would otherwise be lost)."""
        if not isinstance(d, dict):
            raise DatasetError(f"expected a JSON object with fields {', '.join(_field_names(cls))}, got {short_repr(d)}")
        names = _field_names(cls)
        for name in _required_names(cls):
            if name not in d:
                raise DatasetError(f"missing field {name!r} ({cls.__name__} needs {', '.join(names)})")
        extra = [k for k in d if k not in names]
        if extra:
            hint = " (an SFT file? load it with SFTRecord)" if "demonstration" in extra else ""
            raise DatasetError(f"unknown field {extra[0]!r}{hint}; {cls.__name__} has only {', '.join(names)}")
        return cls(**{name: d[name] for name in names if name in d})


@dataclass
class SFTRecord(PromptRecord):
    """A prompt with the demonstration a labeler wrote for it (the SFT dataset, Section 3.5)."""

    demonstration: str
    """The labeler-written answer; non-empty."""
    writer: str = ""
    """The training labeler who wrote it (`rlhf_lib.demonstrators`); empty for real data."""
    slips: list = field(default_factory=list)
    """The slips its writer made (`rlhf_lib.demonstrators.SLIPS`); [] for a perfect answer."""
    oracle: str = ""
    """The template answer a perfect writer gives, for analysis only (never trained on); empty for real data."""


def _required_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def save_jsonl(path: str | Path, records: Iterable[PromptRecord]) -> Path:
    """Write one record per line, atomically: readers see the old file or the complete new one."""
    path = Path(path)
    lines = [json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    return path


def load_jsonl(path: str | Path, record_type: type[R] = PromptRecord) -> list[R]:  # type: ignore[assignment]
    """Read and check every line; the first bad one raises DatasetError naming the file, its 1-based line and the
    field. Blank lines are ignored.
    """
    path = Path(path)
    records: list[R] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path} line {lineno}: invalid JSON ({err.msg} at column {err.colno})") from None
            try:
                records.append(record_type.from_dict(d))
            except DatasetError as err:
                raise DatasetError(f"{path} line {lineno}: {err}") from None
    return records


# ---------------------------------------------------------------------------------------------------------------
# The paper's rules (Section 3.2, Appendix A)


def normalise(text: str) -> str:
    """Lowercase, whitespace runs collapsed to one space, stripped: "Write  a\\nStory" and "write a story" are equal."""
    return " ".join(text.lower().split())


def prefix_key(prompt: str, n_chars: int) -> str:
    """The first `n_chars` characters of the normalised prompt (the whole of it when shorter).

    Section 3.2: "We heuristically deduplicate prompts by checking for prompts that share a long common prefix".
    """
    if n_chars < 1:
        raise ValueError(f"n_chars must be >= 1, got {n_chars}")
    return normalise(prompt)[:n_chars]


T = TypeVar("T", bound=PromptRecord)


def dedup_by_prefix(records: Sequence[T], n_chars: int) -> list[T]:
    """Keep the first record of each prefix key (Section 3.2: near-duplicates share a long common prefix).

    Guarantee: no two kept prompts, normalised, share a common prefix of `n_chars` or more characters, because two
    strings share such a prefix exactly when their first `n_chars` characters are equal. Prompts shorter than `n_chars`
    are compared whole, so only exact duplicates (after normalisation) of them are removed.
    """
    seen: set[str] = set()
    kept: list[T] = []
    for record in records:
        key = prefix_key(record.prompt, n_chars)
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def cap_per_user(records: Sequence[T], cap: int = 200, seed: int = 0) -> list[T]:
    """At most `cap` prompts per user ID (Section 3.2: "we limit the number of prompts to 200 per user ID").

    Which prompts a heavy user keeps is a random sample (a user's first prompts are often tests, not typical use),
    seeded per user from (`seed`, user_id): the same seed keeps the same prompts, and one user's choice does not depend
    on other users. The output keeps the input order.
    """
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    by_user: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_user.setdefault(record.user_id, []).append(i)
    keep: set[int] = set()
    for user, indices in by_user.items():
        if len(indices) > cap:
            indices = random.Random(f"{seed}/{user}").sample(indices, cap)  # str seeds are stable across runs
        keep.update(indices)
    return [r for i, r in enumerate(records) if i in keep]


def _check_fractions(fractions: dict[str, float]) -> None:
    if not isinstance(fractions, dict) or not fractions:
        raise ValueError(f"fractions must be a non-empty dict like {{'train': 0.8, 'valid': 0.2}}, got {fractions!r}")
    for name, frac in fractions.items():
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise ValueError(f"fraction of split {name!r} must be a number in [0, 1], got {frac!r}")
    total = sum(fractions.values())
    if abs(total - 1) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {total:.6g} from {fractions!r}; rescale them.")


def split_by_user(records: Sequence[T], fractions: dict[str, float], seed: int) -> dict[str, list[T]]:
    """Assign whole users to splits so that each split gets about `fractions[split]` of the prompts.

    Section 3.2: splits are made "based on user ID, so that the validation and test sets contain no data from users
    whose data is in the training set". Greedy: users shuffled by `seed`, then largest first (the shuffle orders users
    of equal size), each to the split furthest below its target prompt count. Large users placed first leave small
    ones to even out the totals. Records keep their input order inside each split.
    """
    _check_fractions(fractions)
    by_user: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_user.setdefault(record.user_id, []).append(i)
    users = list(by_user)
    random.Random(seed).shuffle(users)
    users.sort(key=lambda u: len(by_user[u]), reverse=True)  # stable: equal sizes stay in shuffled order

    total = len(records)
    assigned = {name: 0 for name in fractions}
    split_of: dict[str, str] = {}
    for user in users:
        name = max(fractions, key=lambda s: fractions[s] * total - assigned[s])  # first split wins a tie
        split_of[user] = name
        assigned[name] += len(by_user[user])
    out: dict[str, list[T]] = {name: [] for name in fractions}
    for record in records:
        out[split_of[record.user_id]].append(record)
    return out


# Personally identifiable information (Appendix A: prompts were filtered for PII before training).
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# North-American style numbers: optional country code, area code (bracketed or not), 3 + 4 digits, separators
# "-", ".", " " or none. Exactly 10 digits (+ country code): years, prices, ages and counts are far shorter, and a
# digit or decimal point right before or after (a longer number, a decimal) is not a phone number.
_PHONE = re.compile(
    r"(?<![\w.+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}(?![\w-]|[.,]\d)")
_STREET_TYPES = ("Street|St|Lane|Ln|Road|Rd|Avenue|Ave|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Close|"
                 "Crescent|Square|Sq|Row|Parkway|Pkwy|Highway|Hwy|Alley|Gardens|Mews")
# A house number (with an optional letter, "221B"), one to three capitalised names, a street type: "12 Mill Lane".
# Requiring both the capitals and the street type is what keeps "5 words" or "61 years old" out.
_ADDRESS = re.compile(
    r"(?<![\w.])\d{1,5}[A-Za-z]?,? (?:[A-Z][a-zA-Z'-]+ ){1,3}(?:" + _STREET_TYPES + r")\b\.?")

PII_KINDS = ("email", "phone", "address")


def find_pii(text: str) -> list[str]:
    """The kinds of PII in `text`, a sub-list of ("email", "phone", "address") in that order.

    Appendix A: "we filter all prompts in the training split for personally identifiable information (PII)". Ours
    is a regular-expression filter: emails, phone numbers in common formats, street addresses.
    """
    found = []
    if _EMAIL.search(text):
        found.append("email")
    if _PHONE.search(text):
        found.append("phone")
    if _ADDRESS.search(text):
        found.append("address")
    return found


def filter_pii(records: Sequence[T]) -> tuple[list[T], list[T]]:
    """Split records into (kept, removed): removed when the prompt, or an SFT demonstration, contains PII.

    The demonstration is checked too, because SFT trains the model to *write* it.
    """
    kept: list[T] = []
    removed: list[T] = []
    for record in records:
        texts = [record.prompt] + ([record.demonstration] if isinstance(record, SFTRecord) else [])
        (removed if any(find_pii(t) for t in texts) else kept).append(record)
    return kept, removed
