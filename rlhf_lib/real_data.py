"""Real public datasets for the online `gpt2` profile, converted to our records and put through the paper's rules.

The paper's API prompts and labels are not public. The closest public stand-ins:

- Anthropic HH-RLHF (Bai et al. 2022): human preference pairs over assistant dialogues -> `PromptRecord`s and
  K=2 `Judgement`s for the reward model (`load_hh_rlhf`);
- Stanford Alpaca and Databricks Dolly 15k: instruction/response pairs -> `SFTRecord`s for SFT
  (`load_instructions`).

Both go through the same rules as the simulated data where they apply: prefix de-duplication and the PII filter
(`apply_rules`). The `datasets` library does the reading: a local .json/.jsonl file (the tests' fixtures) or a hub
name (only with internet).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rlhf_lib.data import (CATEGORIES, DatasetError, PromptRecord, SFTRecord, dedup_by_prefix, filter_pii, find_pii,
                           normalise)
from rlhf_lib.hub import from_hub
from rlhf_lib.labels import Judgement

DEFAULT_PREFIX_CHARS = 100
"""Prefix length of the near-duplicate rule for real data (the paper does not give its value)."""

HH_ASSISTANT = "\n\nAssistant:"
"""HH-RLHF dialogues alternate "\\n\\nHuman: ..." and "\\n\\nAssistant: ..." turns; the last turn is the answer."""

SCHEMAS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "input", "output"),
    "dolly": ("instruction", "context", "response", "category"),
}
"""Fields of each instruction dataset's public schema (Alpaca's `input` may be absent in some copies)."""

DOLLY_CATEGORIES = {
    "open_qa": "open_qa",
    "general_qa": "open_qa",
    "classification": "classification",
    "closed_qa": "closed_qa",
    "brainstorming": "brainstorming",
    "information_extraction": "extract",
    "summarization": "summarization",
    "creative_writing": "generation",
}
"""Dolly's eight categories mapped onto the paper's use cases (Table 1); anything else becomes "other"."""

# Alpaca has no categories. An instruction whose first word names the use case is "obvious"; the rest is "other".
ALPACA_FIRST_WORDS = {
    "write": "generation", "compose": "generation", "create": "generation", "generate": "generation",
    "brainstorm": "brainstorming", "suggest": "brainstorming",
    "rewrite": "rewrite", "paraphrase": "rewrite", "rephrase": "rewrite", "edit": "rewrite", "translate": "rewrite",
    "summarize": "summarization", "summarise": "summarization",
    "classify": "classification", "categorize": "classification", "categorise": "classification",
    "extract": "extract",
}

assert set(DOLLY_CATEGORIES.values()) <= set(CATEGORIES) and set(ALPACA_FIRST_WORDS.values()) <= set(CATEGORIES)


@dataclass
class RealData:
    """Records after conversion and rules, their judgements (HH-RLHF only) and how many rows each step dropped."""

    records: list[PromptRecord]
    """PromptRecords (HH-RLHF) or SFTRecords (Alpaca, Dolly) that survived the rules."""
    judgements: list[Judgement] = field(default_factory=list)
    """HH-RLHF comparisons of the kept prompts; [] for instruction data."""
    counts: dict[str, int] = field(default_factory=dict)
    """"rows" read, "skipped_<why>" at conversion, "dedup_removed", "pii_removed", ..., and what was kept."""


def _digest(text: str) -> str:
    """A stable id from text (hashlib, not hash(): the same text gets the same id in every run)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _pseudo_user(source: str, prompt: str) -> str:
    """These datasets have no user ids. Each distinct (normalised) prompt becomes its own pseudo user, so that
    `split_by_user` and `cap_per_user` still work and identical prompts always land in the same split."""
    return f"{source}-u{_digest(normalise(prompt))[:10]}"


R = TypeVar("R", bound=PromptRecord)


def apply_rules(records: Sequence[R], prefix_chars: int = DEFAULT_PREFIX_CHARS) -> tuple[list[R], dict[str, int]]:
    """The paper's rules that apply to data without real users: prefix de-duplication, then the PII filter.

    Returns (kept, counts) with counts "in", "dedup_removed", "pii_removed", "kept".
    """
    deduped = dedup_by_prefix(records, prefix_chars)
    kept, removed = filter_pii(deduped)
    return kept, {"in": len(records), "dedup_removed": len(records) - len(deduped), "pii_removed": len(removed),
                  "kept": len(kept)}


# ---------------------------------------------------------------------------------------------------------------
# HH-RLHF


def split_dialogue(dialogue: str) -> tuple[str, str] | None:
    """(prompt up to and including the last "\\n\\nAssistant:", the final response), or None without an
    Assistant turn. `prompt + response == dialogue`, so nothing is lost (the response keeps its leading space)."""
    cut = dialogue.rfind(HH_ASSISTANT)
    if cut < 0:
        return None
    cut += len(HH_ASSISTANT)
    return dialogue[:cut], dialogue[cut:]


def _require(row: Any, index: int, names: Sequence[str], schema_hint: str) -> None:
    if not isinstance(row, dict):
        raise DatasetError(f"row {index}: expected a dict with fields {', '.join(names)}, got {type(row).__name__}")
    for name in names:
        if name not in row:
            raise DatasetError(f"row {index} has no field {name!r} (has {', '.join(map(str, row))}); {schema_hint}")
        if not isinstance(row[name], str):
            raise DatasetError(f"row {index}: field {name!r} must be a string, got {type(row[name]).__name__}")


def hh_rlhf_to_judgements(rows: Iterable[dict], prefix_chars: int = DEFAULT_PREFIX_CHARS) -> RealData:
    """Convert HH-RLHF rows ({"chosen", "rejected"}) to prompts and K=2 judgements (chosen ranked 1), then apply rules.

    Skipped and counted: rows without an Assistant turn ("skipped_malformed"), rows whose two dialogues differ before
    the final answer ("skipped_prompt_mismatch": not a comparison of two answers to one prompt) and rows whose two
    answers are identical ("skipped_identical": no preference to learn). Repeated prompts share one record and keep
    all their comparisons. The rules then drop near-duplicate and PII prompts with their judgements, and judgements
    whose answers contain PII ("pii_completion_removed"). Likert scores and flags were not collected: [] ("not given").
    """
    counts = {"rows": 0, "skipped_malformed": 0, "skipped_prompt_mismatch": 0, "skipped_identical": 0}
    prompts: dict[str, PromptRecord] = {}
    judgements: list[Judgement] = []
    hint = "HH-RLHF rows have 'chosen' and 'rejected' dialogues."
    for index, row in enumerate(rows):
        counts["rows"] += 1
        _require(row, index, ("chosen", "rejected"), hint)
        chosen, rejected = split_dialogue(row["chosen"]), split_dialogue(row["rejected"])
        if chosen is None or rejected is None or not chosen[0].strip():
            counts["skipped_malformed"] += 1
            continue
        if chosen[0] != rejected[0]:
            counts["skipped_prompt_mismatch"] += 1
            continue
        if chosen[1].strip() == rejected[1].strip():
            counts["skipped_identical"] += 1
            continue
        prompt = chosen[0]
        prompt_id = f"hh-{_digest(prompt)}"
        if prompt_id not in prompts:
            prompts[prompt_id] = PromptRecord(prompt_id=prompt_id, user_id=_pseudo_user("hh-rlhf", prompt),
                                              category="chat", kind="user_based", prompt=prompt, task={})
        judgements.append(Judgement(prompt_id=prompt_id, labeler_id="hh-rlhf", completions=[chosen[1], rejected[1]],
                                    ranks=[1, 2], likert=[], flags=[], timestamp=0.0, source="human"))

    kept, rule_counts = apply_rules(list(prompts.values()), prefix_chars)
    kept_ids = {r.prompt_id for r in kept}
    on_kept = [j for j in judgements if j.prompt_id in kept_ids]
    clean = [j for j in on_kept if not any(find_pii(c) for c in j.completions)]
    used = {j.prompt_id for j in clean}
    records = [r for r in kept if r.prompt_id in used]
    counts.update(dedup_removed=rule_counts["dedup_removed"], pii_removed=rule_counts["pii_removed"],
                  pii_completion_removed=len(on_kept) - len(clean), prompts=len(records), judgements=len(clean))
    return RealData(records=records, judgements=clean, counts=counts)


# ---------------------------------------------------------------------------------------------------------------
# Alpaca, Dolly


def format_instruction(instruction: str, extra: str) -> str:
    """The prompt: the instruction, plus "\\n\\nInput:\\n" and the input/context when there is one."""
    instruction, extra = instruction.strip(), extra.strip()
    return f"{instruction}\n\nInput:\n{extra}" if extra else instruction


def alpaca_category(instruction: str) -> str:
    """A use case when the instruction's first word makes it obvious ("Summarize ..."), else "other"."""
    words = instruction.strip().split(maxsplit=1)
    first = words[0].lower().strip(".,:;!?\"'") if words else ""
    return ALPACA_FIRST_WORDS.get(first, "other")


def instructions_to_sft(rows: Iterable[dict], schema: str, prefix_chars: int = DEFAULT_PREFIX_CHARS) -> RealData:
    """Convert Alpaca or Dolly rows to SFTRecords (kind "plain"), then apply the rules.

    Rows with an empty instruction or answer are skipped and counted ("skipped_empty").
    """
    if schema not in SCHEMAS:
        raise ValueError(f"Unknown instruction schema {schema!r}. Valid schemas: {', '.join(SCHEMAS)}.")
    other = "dolly" if schema == "alpaca" else "alpaca"
    hint = f"{schema} rows have {', '.join(SCHEMAS[schema])}; for {other} data pass schema={other!r}."
    counts = {"rows": 0, "skipped_empty": 0}
    records: list[SFTRecord] = []
    for index, row in enumerate(rows):
        counts["rows"] += 1
        if schema == "alpaca":
            _require(row, index, ("instruction", "output"), hint)
            extra = row.get("input") or ""
            answer, category = row["output"], alpaca_category(row["instruction"])
        else:
            _require(row, index, SCHEMAS["dolly"], hint)
            extra, answer = row["context"], row["response"]
            category = DOLLY_CATEGORIES.get(row["category"], "other")
        if not isinstance(extra, str):
            raise DatasetError(f"row {index}: the input/context must be a string, got {type(extra).__name__}")
        if not row["instruction"].strip() or not answer.strip():
            counts["skipped_empty"] += 1
            continue
        prompt = format_instruction(row["instruction"], extra)
        records.append(SFTRecord(prompt_id=f"{schema}-{_digest(prompt + chr(0) + answer)}",
                                 user_id=_pseudo_user(schema, prompt), category=category, kind="plain",
                                 prompt=prompt, task={}, demonstration=answer.strip()))
    kept, rule_counts = apply_rules(records, prefix_chars)
    counts.update(dedup_removed=rule_counts["dedup_removed"], pii_removed=rule_counts["pii_removed"],
                  kept=len(kept))
    return RealData(records=kept, counts=counts)


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_rows(name_or_path: str | Path, split: str = "train", limit: int | None = None,
              cache_dir: str | Path | None = None, field: str = "data.real_sft") -> list[dict]:
    """Rows of a local .json/.jsonl file (JSON lines or one JSON array) or of a hub dataset (needs internet).

    `limit` keeps the first rows only.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0, got {limit}")
    path = Path(name_or_path)
    if path.suffix in (".json", ".jsonl"):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such data file; pass an existing .json/.jsonl file or a hub name.")
        return read_json_rows(path)[:limit]
    import datasets  # heavy import: only when a hub dataset is read

    kwargs: dict[str, Any] = {"cache_dir": str(cache_dir)} if cache_dir is not None else {}
    if path.exists():
        raise DatasetError(f"{path}: local data must be a .json or .jsonl file.")
    else:
        ds = from_hub(lambda name: datasets.load_dataset(name, split=split, **kwargs), str(name_or_path), field,
                      "dataset")  # `field`: the profile field that names it
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return list(ds)


def read_json_rows(path: Path) -> list[dict]:
    """A local .json (one array) or .jsonl file's rows, each with every column (None where a row lacks it), as
    `datasets` would give them. Read directly, not by `datasets.load_dataset("json")`, which pings the hub to count
    the load: a local file needs no network, and the offline rehearsal refuses it."""
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                       if line.strip()]
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not JSON lines nor one JSON array ({err}).") from err
    if not all(isinstance(row, dict) for row in rows):
        raise DatasetError(f"{path}: every row must be a JSON object.")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{key: row.get(key) for key in columns} for row in rows]


def load_hh_rlhf(split: str = "train", path_or_name: str | Path = "Anthropic/hh-rlhf", limit: int | None = None,
                 prefix_chars: int = DEFAULT_PREFIX_CHARS, cache_dir: str | Path | None = None) -> RealData:
    """HH-RLHF as prompts + K=2 judgements (see `hh_rlhf_to_judgements`). `split`: "train" or "test" on the hub."""
    return hh_rlhf_to_judgements(load_rows(path_or_name, split, limit, cache_dir, "data.real_rm"), prefix_chars)


def load_instructions(name_or_path: str | Path, schema: str, limit: int | None = None, split: str = "train",
                      prefix_chars: int = DEFAULT_PREFIX_CHARS, cache_dir: str | Path | None = None) -> RealData:
    """Alpaca ("tatsu-lab/alpaca", schema "alpaca") or Dolly ("databricks/databricks-dolly-15k", schema "dolly")
    as SFTRecords (see `instructions_to_sft`)."""
    if schema not in SCHEMAS:
        raise ValueError(f"Unknown instruction schema {schema!r}. Valid schemas: {', '.join(SCHEMAS)}.")
    return instructions_to_sft(load_rows(name_or_path, split, limit, cache_dir), schema, prefix_chars)
