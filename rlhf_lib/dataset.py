"""The paper's dataset build, end to end: simulated users -> rules -> splits -> SFT / RM / PPO datasets (notebook 01).

Order of the rules as in Section 3.2: deduplicate by long common prefix, cap each user at 200 prompts, split
train / valid / test by user ID, filter personal data. The train and valid splits are then divided among the three
datasets in the paper's proportions (Table 6: 12,725 SFT, 33,207 RM and 31,144 PPO training prompts), scaled by the
profile. Everything is written as JSONL under `artifacts/<profile>/data/`, with the calibrated labeler pool.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_lib import data as D
from rlhf_lib.artifacts import step_dir, write_json_atomic
from rlhf_lib.checks import Checks, check
from rlhf_lib.config import Profile
from rlhf_lib.demonstrators import SLIPS, WritingProfile, eligible, slip_rates, write, writing_profiles
from rlhf_lib.labelers import Labeler, agreement_matrix, calibrate_noise, gold_utility, group_agreement, make_pool
from rlhf_lib.tasks import Task, candidate_set
from rlhf_lib.users import simulate_users
from rlhf_lib.world import World

DATASETS = ("sft", "rm", "ppo")
FILES = {f"{d}_{s}": f"{d}_{s}.jsonl" for d in DATASETS for s in ("train", "valid")} | {"test": "test.jsonl"}
"""Dataset name -> file under `artifacts/<profile>/data/`."""


def target_sizes(cfg: Profile) -> dict[str, int]:
    """Prompts wanted per dataset: the paper's train sizes times `scale`, valid a fraction of train."""
    out = {}
    for d in DATASETS:
        n = max(8, round(D.PAPER_DATASET_SIZES[d]["train"] * cfg.data.scale))
        out[f"{d}_train"], out[f"{d}_valid"] = n, max(4, round(n * cfg.data.valid_fraction))
    out["test"] = cfg.data.n_test
    return out


@dataclass
class BuildResult:
    datasets: dict[str, list[D.PromptRecord]]
    stages: list[tuple[str, int]]
    """(rule, prompts left after it), in order."""
    removed: dict[str, list[D.PromptRecord]] = field(default_factory=dict)
    """Examples of what each rule removed."""
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(kept prompt, removed prompt) pairs that differ in text but share the long prefix."""
    oracles: dict[str, str] = field(default_factory=dict)
    """prompt_id -> the template answer a perfect writer gives, for every kept prompt (analysis only)."""


def build_datasets(cfg: Profile, world: World) -> BuildResult:
    """Simulate users, apply the paper's rules, split by user, divide among SFT / RM / PPO."""
    c = cfg.data
    targets = target_sizes(cfg)
    sims = simulate_users(world, round(sum(targets.values()) * c.raw_factor), seed=c.seed,
                          p_near_duplicate=c.p_near_duplicate, p_pii=c.p_pii)
    demo = {s.record.prompt_id: s.demonstration for s in sims}
    records = [s.record for s in sims]
    stages = [("simulated", len(records))]
    removed: dict[str, list[D.PromptRecord]] = {}

    # 1) dedup by long common prefix, 2) at most `cap_per_user` per user
    kept = D.dedup_by_prefix(records, c.dedup_prefix_chars)
    kept_ids = {r.prompt_id for r in kept}
    removed["dedup"] = [r for r in records if r.prompt_id not in kept_ids]
    by_key = {D.prefix_key(r.prompt, c.dedup_prefix_chars): r.prompt for r in kept}
    near = [(by_key[D.prefix_key(r.prompt, c.dedup_prefix_chars)], r.prompt) for r in removed["dedup"]]
    near = [(a, b) for a, b in near if a != b][:10]
    stages.append(("dedup_by_prefix", len(kept)))
    capped = D.cap_per_user(kept, c.cap_per_user, seed=c.seed)
    stages.append(("cap_per_user", len(capped)))

    # 3) train / valid / test by user ID, 4) personal data filtered out
    want = {"train": sum(targets[f"{d}_train"] for d in DATASETS),
            "valid": sum(targets[f"{d}_valid"] for d in DATASETS), "test": targets["test"]}
    total = sum(want.values())
    splits = D.split_by_user(capped, {k: v / total for k, v in want.items()}, seed=c.seed)
    stages.append(("split_by_user", sum(len(v) for v in splits.values())))
    removed["pii"] = []
    for name in splits:
        splits[name], gone = D.filter_pii(splits[name])
        removed["pii"] += gone
    stages.append(("filter_pii", sum(len(v) for v in splits.values())))

    # 5) divide train and valid among the three datasets in the paper's proportions; the training labelers write
    #    the SFT demonstrations
    writers = training_writers(cfg)
    rng = random.Random(c.seed)
    datasets: dict[str, list[D.PromptRecord]] = {}
    for split in ("train", "valid"):
        pool = list(splits[split])
        rng.shuffle(pool)
        sizes = {d: targets[f"{d}_{split}"] for d in DATASETS}
        scale = min(1.0, len(pool) / sum(sizes.values()))  # too few prompts left: shrink all three alike
        start = 0
        for d in DATASETS:
            n = int(sizes[d] * scale)
            chunk = sorted(pool[start: start + n], key=lambda r: r.prompt_id)
            start += n
            datasets[f"{d}_{split}"] = [written_by_labelers(cfg, world, r, demo[r.prompt_id], writers)
                                        for r in chunk] if d == "sft" else chunk
    datasets["test"] = sorted(splits["test"], key=lambda r: r.prompt_id)[: targets["test"]]
    oracles = {r.prompt_id: demo[r.prompt_id] for recs in datasets.values() for r in recs}
    return BuildResult(datasets, stages, {k: v[:20] for k, v in removed.items()}, near, oracles)


def training_writers(cfg: Profile) -> list[WritingProfile]:
    """The training labelers' writing profiles (held-out labelers write nothing, as in the paper)."""
    lc = cfg.labelers
    ids = [lab.labeler_id for lab in make_pool(lc.n_labelers, lc.n_heldout, lc.seed) if lab.group == "train"]
    return writing_profiles(ids, lc.slip_scale, lc.writer_spread, seed=lc.seed)


def written_by_labelers(cfg: Profile, world: World, record: D.PromptRecord, oracle: str,
                        writers: list[WritingProfile]) -> D.SFTRecord:
    """The SFT record of `record`: a training labeler, drawn per prompt, writes its demonstration."""
    rng = random.Random(f"{cfg.labelers.seed}:{record.prompt_id}")
    profile = rng.choice(writers)
    text, slips = write(world, task_of(record), oracle, profile, rng)
    return D.SFTRecord(**record.to_dict(), demonstration=text, writer=profile.writer, slips=slips, oracle=oracle)


def demonstration_metrics(world: World, records: list[D.SFTRecord]) -> dict[str, Any]:
    """Gold utility of the demonstrations and of the oracle on the same prompts; each slip's rate over the prompts
    where it can happen (`demo_slip_rates`), and the share of answers showing each slip's sign on its axis, the
    measure that applies to any model's samples too (`*_sign_rates`)."""
    tasks = [task_of(r) for r in records]
    demo_checks = [check(world, t, r.demonstration) for t, r in zip(tasks, records)]
    oracle_checks = [check(world, t, r.oracle) for t, r in zip(tasks, records)]
    demo_gold = [gold_utility(c, r.demonstration) for c, r in zip(demo_checks, records)]
    oracle_gold = [gold_utility(c, r.oracle) for c, r in zip(oracle_checks, records)]
    can = [eligible(world, t, r.oracle) for t, r in zip(tasks, records)]
    made = {s: float(np.mean([s in r.slips for r, e in zip(records, can) if e[s]] or [np.nan])) for s in SLIPS}
    return {"demo_gold_mean": float(np.mean(demo_gold)), "oracle_gold_mean": float(np.mean(oracle_gold)),
            "demo_slip_rates": made, "demo_share_with_slip": float(np.mean([bool(r.slips) for r in records])),
            "demo_sign_rates": slip_rates(tasks, demo_checks, [r.demonstration for r in records]),
            "oracle_sign_rates": slip_rates(tasks, oracle_checks, [r.oracle for r in records]),
            "slip_eligible_share": {s: float(np.mean([e[s] for e in can])) for s in SLIPS}}


def data_dir(profile: str) -> Path:
    return step_dir(profile, "data")


def save_datasets(profile: str, result: BuildResult) -> dict[str, Path]:
    """Every dataset as JSONL, and the oracle answers apart (`oracles.json`), so that no training file holds them."""
    paths = {name: D.save_jsonl(data_dir(profile) / FILES[name], recs) for name, recs in result.datasets.items()}
    paths["oracles"] = data_dir(profile) / "oracles.json"
    write_json_atomic(paths["oracles"], result.oracles)
    return paths


def load_oracles(profile: str) -> dict[str, str]:
    """prompt_id -> the oracle answer (the ceiling drawn in notebooks 01, 02 and 04; never a training signal)."""
    path = data_dir(profile) / "oracles.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebook 01 (or `rlhf_lib.dataset.build_data(cfg)`).")
    return json.loads(path.read_text())


def load_dataset(profile: str, name: str) -> list[D.PromptRecord]:
    """One dataset of the profile (`sft_train`, `rm_valid`, `test`, ...); SFT files load as `SFTRecord`."""
    if name not in FILES:
        raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(FILES)}.")
    path = data_dir(profile) / FILES[name]
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebook 01 (or `rlhf_lib.dataset.build_data(cfg)`).")
    return D.load_jsonl(path, D.SFTRecord if name.startswith("sft") else D.PromptRecord)


def task_of(record: D.PromptRecord) -> Task:
    return Task.from_dict(record.task)


# ---------------------------------------------------------------------------------------------------------------
# Labelers: candidate sets, calibration, persistence


def candidate_items(world: World, records: list[D.SFTRecord | D.PromptRecord], demos: dict[str, str], k_min: int,
                    k_max: int, seed: int) -> list[tuple[str, list[str], list[Checks]]]:
    """(prompt_id, K completions, their checks) for each record: a good answer plus spoiled ones."""
    rng = random.Random(seed)
    items = []
    for rec in records:
        task = task_of(rec)
        comps = candidate_set(world, task, demos[rec.prompt_id], rng.randint(k_min, k_max), rng)
        rng.shuffle(comps)
        items.append((rec.prompt_id, comps, [check(world, task, x) for x in comps]))
    return items


def calibrated_pool(cfg: Profile, items: list[tuple[str, list[str], list[Checks]]]) -> list[Labeler]:
    """The labeler pool with each group's noise set so that it agrees as often as the paper's labelers did."""
    lc = cfg.labelers
    pool = make_pool(lc.n_labelers, lc.n_heldout, lc.seed, weight_spread=lc.weight_spread,
                     quirk_spread=lc.quirk_spread)
    pairs = [(comps, chk) for _, comps, chk in items]
    calibrate_noise(pool, pairs, "train", lc.target_agreement_train, seed=lc.seed)
    calibrate_noise(pool, pairs, "heldout", lc.target_agreement_heldout, seed=lc.seed)
    return pool


def measure_agreement(pool: list[Labeler], items: list[tuple[str, list[str], list[Checks]]],
                      seed: int = 1) -> tuple[np.ndarray, dict[str, float]]:
    """Agreement matrix over `items` and its summary: within training, within held-out, and across the groups."""
    mat = agreement_matrix(pool, [(comps, chk) for _, comps, chk in items], seed)
    train = [i for i, lab in enumerate(pool) if lab.group == "train"]
    held = [i for i, lab in enumerate(pool) if lab.group == "heldout"]
    (tr, tr_se), (he, he_se) = group_agreement(pool, mat, "train"), group_agreement(pool, mat, "heldout")
    return mat, {"agreement_train_labelers": tr, "agreement_train_labelers_se": tr_se,
                 "agreement_heldout_labelers": he, "agreement_heldout_labelers_se": he_se,
                 "agreement_train_vs_heldout": float(np.mean(mat[np.ix_(train, held)]))}


def save_pool(profile: str, pool: list[Labeler]) -> Path:
    path = data_dir(profile) / "labelers.json"
    write_json_atomic(path, [{"labeler_id": lab.labeler_id, "group": lab.group, "weights": lab.weights.tolist(),
                              "noise": lab.noise, "tie_margin": lab.tie_margin} for lab in pool])
    return path


def load_pool(profile: str) -> list[Labeler]:
    path = data_dir(profile) / "labelers.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebook 01 (or `rlhf_lib.dataset.build_data(cfg)`).")
    return [Labeler(d["labeler_id"], d["group"], np.array(d["weights"]), d["noise"], d["tie_margin"])
            for d in json.loads(path.read_text())]


def audit(datasets: dict[str, list[D.PromptRecord]], cap: int, prefix_chars: int) -> dict[str, Any]:
    """The rules, checked on the output: users per split, prompts per user, PII, shared long prefixes."""
    split_of = {"test": "test"} | {n: n.split("_")[1] for n in datasets if n != "test"}
    users: dict[str, set[str]] = {}
    per_user: Counter = Counter()
    keys: Counter = Counter()
    pii = 0
    for name, recs in datasets.items():
        for r in recs:
            users.setdefault(r.user_id, set()).add(split_of[name])
            per_user[r.user_id] += 1
            keys[D.prefix_key(r.prompt, prefix_chars)] += 1
            pii += bool(D.find_pii(r.prompt))
    return {"users_in_two_splits": sum(len(s) > 1 for s in users.values()),
            "max_prompts_per_user": max(per_user.values(), default=0),
            "prompts_with_pii": pii, "shared_prefix_pairs": sum(n - 1 for n in keys.values() if n > 1),
            "cap_respected": max(per_user.values(), default=0) <= cap}


# ---------------------------------------------------------------------------------------------------------------
# Notebook 01 without the prose


def build_data(cfg: Profile) -> dict[str, Any]:
    """Notebook 01's steps in its order: build and save the datasets, calibrate the labelers' noise on half of the
    candidate sets and measure their agreement on the other half, save the pool, write `data/metrics.json`."""
    from rlhf_lib.base_model import world_for
    from rlhf_lib.artifacts import write_metrics

    world = world_for(cfg.world)
    result = build_datasets(cfg, world)
    save_datasets(cfg.name, result)
    items = calibration_items(cfg, world, result.datasets)
    half = len(items) // 2
    pool = calibrated_pool(cfg, items[:half])
    _, agreement = measure_agreement(pool, items[half:])
    save_pool(cfg.name, pool)
    metrics = data_metrics(cfg, world, result, pool, agreement)
    write_metrics(cfg.name, "data", metrics)
    return metrics


def calibration_items(cfg: Profile, world: World, datasets: dict[str, list[D.PromptRecord]]):
    """Candidate sets on SFT-train prompts, for calibrating and measuring agreement: the oracle answer and spoiled
    versions of it (the demonstrations' own slips would change what is being calibrated)."""
    recs = datasets["sft_train"][: cfg.labelers.n_calibration_items]
    demos = {r.prompt_id: r.oracle or r.demonstration for r in recs}  # type: ignore[attr-defined]
    return candidate_items(world, recs, demos, cfg.labelers.k_min, cfg.labelers.k_max, cfg.labelers.seed)


def data_metrics(cfg: Profile, world: World, result: BuildResult, pool: list[Labeler], agreement: dict[str, float],
                 demos: dict[str, Any] | None = None) -> dict[str, Any]:
    """`data/metrics.json`: sizes, prompts after each rule, labeler noise and agreement, the audit, and the
    demonstrations against the oracle (`demos`: what `demonstration_metrics` returned, computed here when None)."""
    sizes = {f"n_{name}": len(recs) for name, recs in result.datasets.items()}
    rules = {f"prompts_after_{name}": n for name, n in result.stages}
    noise = {f"noise_{g}": next(lab.noise for lab in pool if lab.group == g) for g in ("train", "heldout")}
    return {**agreement, **sizes, **rules, **noise,
            **audit(result.datasets, cfg.data.cap_per_user, cfg.data.dedup_prefix_chars),
            **(demos or demonstration_metrics(world, result.datasets["sft_train"]))}  # type: ignore[arg-type]


def ensure_data(cfg: Profile) -> None:
    """Build the datasets when they are missing, so each later notebook runs alone."""
    if not all((data_dir(cfg.name) / f).exists() for f in list(FILES.values()) + ["oracles.json"]) or \
            not (data_dir(cfg.name) / "labelers.json").exists():
        print(f"No datasets under {data_dir(cfg.name)}: building them (this is what notebook 01 does).")
        build_data(cfg)
