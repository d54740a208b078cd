"""The dataset build of notebook 01, on the smoke profile, checked against the paper's rules."""

import json
import re
from collections import Counter

import pytest

from rlhf_lib import dataset as ds
from rlhf_lib.config import get_profile
from rlhf_lib.data import DatasetError, SFTRecord, find_pii, prefix_key
from rlhf_lib.users import simulate_users
from rlhf_lib.world import build_world


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("data")
    old = os.environ.get("RLHF_ARTIFACTS")
    os.environ["RLHF_ARTIFACTS"] = str(root)
    cfg = get_profile("smoke")
    metrics = ds.build_data(cfg)
    yield cfg, metrics, {name: ds.load_dataset(cfg.name, name) for name in ds.FILES}
    os.environ["RLHF_ARTIFACTS"] = old


def test_users_are_heavy_tailed_and_messy():
    world = build_world(0, n_people=30, n_places=8, n_animals=10, n_objects=12, n_misconceptions=6)
    sims = simulate_users(world, 2000, seed=0)
    per_user = Counter(s.record.user_id for s in sims)
    assert len(sims) == 2000 and max(per_user.values()) >= 250  # someone is over the cap
    assert sum(bool(find_pii(s.record.prompt)) for s in sims) > 10
    keys = Counter(prefix_key(s.record.prompt, 80) for s in sims)
    assert sum(n > 1 for n in keys.values()) > 10  # near-duplicates exist before the rule
    assert [s.record.prompt for s in simulate_users(world, 300, seed=1)] == \
        [s.record.prompt for s in simulate_users(world, 300, seed=1)]


def test_outputs_obey_every_rule(built):
    cfg, metrics, data = built
    per_user, splits_of = Counter(), {}
    keys = Counter()
    for name, recs in data.items():
        split = "test" if name == "test" else name.split("_")[1]
        for r in recs:
            per_user[r.user_id] += 1
            splits_of.setdefault(r.user_id, set()).add(split)
            keys[prefix_key(r.prompt, cfg.data.dedup_prefix_chars)] += 1
            assert not re.search(r"[\w.]+@[\w.]+\.\w+", r.prompt) and not find_pii(r.prompt)
    assert max(per_user.values()) <= cfg.data.cap_per_user
    assert all(len(s) == 1 for s in splits_of.values())
    assert max(keys.values()) == 1
    assert metrics["users_in_two_splits"] == 0 and metrics["prompts_with_pii"] == 0


def test_sizes_follow_the_papers_proportions(built):
    cfg, metrics, data = built
    targets = ds.target_sizes(cfg)
    for name, n in targets.items():
        assert metrics[f"n_{name}"] == len(data[name]) and len(data[name]) >= 0.8 * n, name
    assert len(data["rm_train"]) > len(data["ppo_train"]) > len(data["sft_train"])
    assert all(isinstance(r, SFTRecord) and r.demonstration for r in data["sft_train"])
    stages = [metrics[k] for k in ("prompts_after_simulated", "prompts_after_dedup_by_prefix",
                                   "prompts_after_cap_per_user", "prompts_after_filter_pii")]
    assert stages == sorted(stages, reverse=True) and stages[0] > stages[1] > stages[2]


def test_agreement_is_calibrated_near_the_paper(built):
    _, metrics, _ = built
    assert abs(metrics["agreement_train_labelers"] - 0.726) < 0.05
    assert abs(metrics["agreement_heldout_labelers"] - 0.773) < 0.05
    assert metrics["noise_train"] > metrics["noise_heldout"] > 0


def test_pool_round_trips(built):
    cfg, _, _ = built
    pool = ds.load_pool(cfg.name)
    assert len(pool) == cfg.labelers.n_labelers and {p.group for p in pool} == {"train", "heldout"}


def test_bad_dataset_file_names_file_line_and_field(built, tmp_path):
    cfg, _, _ = built
    path = ds.data_dir(cfg.name) / "sft_valid.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["demonstration"] = 3
    lines[1] = json.dumps(rec)
    bad = tmp_path / "sft_valid.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    from rlhf_lib.data import load_jsonl

    with pytest.raises(DatasetError, match=r"sft_valid.jsonl.* line 2.*demonstration"):
        load_jsonl(bad, SFTRecord)
    with pytest.raises(ValueError, match="Valid names"):
        ds.load_dataset(cfg.name, "sft_tests")


def test_training_labelers_write_the_demonstrations(built):
    cfg, metrics, data = built
    pool = {lab.labeler_id: lab.group for lab in ds.load_pool(cfg.name)}
    sft = data["sft_train"] + data["sft_valid"]
    assert {pool[r.writer] for r in sft} == {"train"}  # held-out labelers write nothing
    assert len({r.writer for r in sft}) > 5
    for r in sft:  # a demonstration differs from the oracle exactly when its writer slipped
        assert (r.demonstration != r.oracle) == bool(r.slips)
    assert 0 < sum(bool(r.slips) for r in sft) < len(sft) / 2
    oracles = ds.load_oracles(cfg.name)
    assert all(oracles[r.prompt_id] == r.oracle for r in sft)
    assert all(r.prompt_id in oracles for r in data["ppo_valid"] + data["test"])  # the ceiling on any prompt
    assert metrics["oracle_gold_mean"] > metrics["demo_gold_mean"]
    assert set(metrics["demo_slip_rates"]) == {"drifts", "ignores_constraint", "adds_detail", "rude", "stops_short"}
    assert all(v == 0 for v in metrics["oracle_sign_rates"].values())


def test_perfect_writers_write_the_oracle():
    from rlhf_lib.base_model import world_for

    cfg = get_profile("smoke", {"labelers.slip_scale": 0.0})
    result = ds.build_datasets(cfg, world_for(cfg.world))
    assert all(r.demonstration == r.oracle and r.slips == [] for r in result.datasets["sft_train"])
