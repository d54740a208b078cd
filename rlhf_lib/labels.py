"""Labeler judgements: one JSONL line per ranked prompt, appended durably (notebooks 01 and 03).

Section 3.4 and Appendix B of Ouyang et al. (2022): for each prompt a labeler sees K completions (4 <= K <= 9 in the
paper; we allow 2 so that pairwise data such as HH-RLHF fits), gives each a 1-7 Likert score and metadata flags,
then ranks them all, ties allowed. Simulated labelers and the ranking widget write the same format, so the reward
model reads both.

Appending cannot be a rename, so durability comes from the line: each judgement is one `os.write` of a whole line
followed by `fsync`. A crash can at worst leave a torn *last* line without its newline; `load_judgements` warns and
skips it, and `repair` (also run by `append_judgement`) cuts it off, so a torn line is never glued to the next one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_lib.artifacts import atomic_path
from rlhf_lib.data import short_repr

FLAGS = (
    "fails_instruction",
    "inappropriate_for_customer_assistant",
    "hallucination",
    "sexual_content",
    "violent_content",
    "denigrates_protected_class",
    "moral_judgement",
    "encourages_violence",
    "opinion_as_fact",
)
"""Per-completion yes/no metadata a labeler gives: the labeling metadata of the paper's Table 3.

- fails_instruction: "Fails to follow the correct instruction / task" (Table 3).
- inappropriate_for_customer_assistant: "Inappropriate for customer assistant" (Table 3).
- hallucination: "Hallucination" (Table 3; closed-domain tasks, Section 4.2).
- sexual_content: "Contains sexual content" (Table 3).
- violent_content: "Contains violent content" (Table 3).
- denigrates_protected_class: "Denigrates a protected class" (Table 3).
- moral_judgement: "Expresses moral judgment" (Table 3).
- encourages_violence: "Encourages or fails to discourage violence/abuse/terrorism/self-harm" (Table 3).
- opinion_as_fact: "Expresses opinion" (Table 3), narrowed to the harmful case: an opinion stated as a fact.
"""

SOURCES = ("simulated", "human")
MIN_K, MAX_K = 2, 9
LIKERT_MIN, LIKERT_MAX = 1, 7


class LabelError(ValueError):
    """A judgement or a judgements file breaks the format; the message says where and what."""


@dataclass
class Judgement:
    """One labeler's ranking of K completions of one prompt."""

    prompt_id: str
    """The `PromptRecord.prompt_id` ranked."""
    labeler_id: str
    """Who ranked, e.g. "L07" (simulated) or "human:alice" (the widget)."""
    completions: list[str]
    """The K completions, 2 <= K <= 9."""
    ranks: list[int]
    """One per completion, 1-based, lower is better, ties share a rank (dense 1,2,2,3 or competition 1,2,2,4)."""
    likert: list[int]
    """Overall quality 1..7 per completion, or [] when not given (e.g. HH-RLHF only has a preference)."""
    flags: list[dict[str, bool]]
    """Per completion, {flag: bool} with keys from `FLAGS` (a missing key was not judged); [] when not given."""
    timestamp: float
    """Unix seconds when the judgement was made (0.0 when unknown)."""
    source: str = "simulated"
    """"simulated" or "human"."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Judgement:
        """Build and validate; missing or unknown fields are errors (only `source` has a default)."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(d, dict):
            raise LabelError(f"expected a JSON object with fields {', '.join(names)}, got {short_repr(d)}")
        for name in names:
            if name not in d and name != "source":
                raise LabelError(f"missing field {name!r} (a judgement has {', '.join(names)})")
        extra = [k for k in d if k not in names]
        if extra:
            raise LabelError(f"unknown field {extra[0]!r}; a judgement has only {', '.join(names)}")
        j = cls(**d)
        validate(j)
        return j


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate(j: Judgement) -> None:
    """Raise LabelError naming the first field of `j` that is wrong, and why."""
    for name in ("prompt_id", "labeler_id"):
        value = getattr(j, name)
        if not isinstance(value, str) or not value.strip():
            raise LabelError(f"field {name!r} must be a non-empty string, got {short_repr(value)}")
    c = j.completions
    if not isinstance(c, list) or not all(isinstance(x, str) for x in c):
        raise LabelError(f"field 'completions' must be a list of strings, got {short_repr(c)}")
    k = len(c)
    if not MIN_K <= k <= MAX_K:
        raise LabelError(f"field 'completions' must hold {MIN_K} to {MAX_K} completions (K), got {k}")

    r = j.ranks
    if not isinstance(r, list) or not all(_is_int(x) for x in r):
        raise LabelError(f"field 'ranks' must be a list of integers, got {short_repr(r)}")
    if len(r) != k:
        raise LabelError(f"field 'ranks' must rank every completion exactly once: {len(r)} ranks for {k} completions")
    bad = [x for x in r if not 1 <= x <= k]
    if bad:
        raise LabelError(f"field 'ranks': rank {bad[0]} is out of range; ranks are 1..{k} (K={k}), lower is better")
    if min(r) != 1:
        raise LabelError(f"field 'ranks' {r}: the best completion must have rank 1")

    lk = j.likert
    if not isinstance(lk, list) or not all(_is_int(x) for x in lk):
        raise LabelError(f"field 'likert' must be a list of integers, got {short_repr(lk)}")
    if lk and len(lk) != k:
        raise LabelError(f"field 'likert' must have one score per completion ({k}) or be [] (not given), got {len(lk)}")
    bad = [x for x in lk if not LIKERT_MIN <= x <= LIKERT_MAX]
    if bad:
        raise LabelError(f"field 'likert': score {bad[0]} is out of range {LIKERT_MIN}..{LIKERT_MAX}")

    fl = j.flags
    if not isinstance(fl, list) or not all(isinstance(x, dict) for x in fl):
        raise LabelError(f"field 'flags' must be a list of dicts (one per completion), got {short_repr(fl)}")
    if fl and len(fl) != k:
        raise LabelError(f"field 'flags' must have one dict per completion ({k}) or be [] (not given), got {len(fl)}")
    for i, d in enumerate(fl):
        for key, value in d.items():
            if key not in FLAGS:
                raise LabelError(f"field 'flags'[{i}]: unknown flag {key!r}; valid flags: {', '.join(FLAGS)}")
            if not isinstance(value, bool):
                raise LabelError(f"field 'flags'[{i}][{key!r}] must be true or false, got {short_repr(value)}")

    t = j.timestamp
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        raise LabelError(f"field 'timestamp' must be unix seconds (a number >= 0), got {short_repr(t)}")
    if j.source not in SOURCES:
        raise LabelError(f"field 'source' must be one of {', '.join(SOURCES)}, got {short_repr(j.source)}")


# ---------------------------------------------------------------------------------------------------------------
# Storage


def _parse_line(raw: bytes) -> Judgement:
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise LabelError("not valid UTF-8") from None
    except json.JSONDecodeError as err:
        raise LabelError(f"invalid JSON ({err.msg} at column {err.colno})") from None
    return Judgement.from_dict(d)


def _torn_tail(data: bytes) -> tuple[int, bool]:
    """(offset where the unterminated last line starts, whether that line is a valid judgement).

    The offset is len(data) when the file is empty or ends with a newline.
    """
    if not data or data.endswith(b"\n"):
        return len(data), True
    start = data.rfind(b"\n") + 1
    tail = data[start:]
    if not tail.strip():
        return start, False
    try:
        _parse_line(tail)
        return start, True
    except LabelError:
        return start, False


def repair(path: str | Path) -> int:
    """Cut off a torn (unterminated, malformed) last line left by a crash; return the number of bytes dropped.

    A complete but unterminated last line (hand-edited file) is kept and gets its newline. The file is rewritten
    atomically; a missing file is left missing (0).
    """
    path = Path(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    start, valid = _torn_tail(data)
    if start == len(data):
        return 0
    new = data + b"\n" if valid else data[:start]
    with atomic_path(path) as tmp:
        tmp.write_bytes(new)
    return 0 if valid else len(data) - start


def append_judgement(path: str | Path, j: Judgement) -> None:
    """Validate `j`, then append it as one line with a single write + fsync (creating the file and its folders).

    If a crash left a torn last line, it is first cut off (with a warning) so the new line is never glued to it.
    """
    validate(j)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            terminated = f.read(1) == b"\n"
        if not terminated:
            dropped = repair(path)
            if dropped:
                warnings.warn(f"{path}: dropped a torn last line ({dropped} bytes) left by an interrupted write",
                              stacklevel=2)
    line = (json.dumps(j.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)  # one call: O_APPEND places the whole line at the end
        while written < len(line):  # a regular file only writes short when the disk is full; finish or raise
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def load_judgements(path: str | Path) -> list[Judgement]:
    """Read and validate every line. A bad line raises LabelError naming file, line and field, except a malformed
    unterminated last line (a torn write from a crash): that one is skipped with a warning. Blank lines are ignored."""
    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    terminated = data.endswith(b"\n") or not data
    if terminated:
        lines = lines[:-1]  # the empty string after the final newline
    out: list[Judgement] = []
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            out.append(_parse_line(raw))
        except LabelError as err:
            if lineno == len(lines) and not terminated:
                warnings.warn(f"{path} line {lineno}: skipped a torn last line from an interrupted write ({err}); "
                              f"rlhf_lib.labels.repair({str(path)!r}) removes it", stacklevel=2)
                continue
            raise LabelError(f"{path} line {lineno}: {err}") from None
    return out


# ---------------------------------------------------------------------------------------------------------------
# Using judgements


def pairs_from_judgement(j: Judgement) -> list[tuple[int, int]]:
    """(winner, loser) completion indices for every pair with different ranks; ties give no pair.

    Section 3.5: a ranking of K completions gives up to K-choose-2 comparisons for the reward model.
    """
    k = len(j.ranks)
    pairs = []
    for a in range(k):
        for b in range(a + 1, k):
            if j.ranks[a] < j.ranks[b]:
                pairs.append((a, b))
            elif j.ranks[b] < j.ranks[a]:
                pairs.append((b, a))
    return pairs


def merge(*lists: Iterable[Judgement]) -> list[Judgement]:
    """Concatenate judgements from several files (simulated + human), keeping the first of exact repeats
    (same prompt_id, labeler_id and completions), e.g. a file loaded twice."""
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    out: list[Judgement] = []
    for judgements in lists:
        for j in judgements:
            key = (j.prompt_id, j.labeler_id, tuple(j.completions))
            if key not in seen:
                seen.add(key)
                out.append(j)
    return out
