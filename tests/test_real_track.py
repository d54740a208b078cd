"""The real-data track (rlhf_lib.real_track, notebook 08): the split into halves, the win rates, and the whole track
on tiny models and small local files in the public schemas (Dolly, HH-RLHF).

The files are the shipped samples (`data/samples/`) repeated with varied texts, so that the paper's rules (prefix
de-duplication, the PII filter) keep enough rows; nothing here touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rlhf_lib import real_track
from rlhf_lib.config import REAL_STAGES, get_profile
from rlhf_lib.labels import Judgement

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def write_real_samples(folder: Path, n_sft: int = 40, n_rm: int = 60) -> tuple[Path, Path]:
    """Dolly and HH-RLHF files of `n_sft` and `n_rm` rows: the shipped samples in turn, each with a numbered opening
    ("Case 7: ...") so that no two prompts share the 100 characters the de-duplication rule compares. The samples'
    own traps stay (a PII prompt, a prompt mismatch, identical answers), so the rules still drop some rows."""
    folder.mkdir(parents=True, exist_ok=True)
    dolly = [json.loads(line) for line in (SAMPLES / "dolly_sample.jsonl").read_text().splitlines() if line.strip()]
    hh = [json.loads(line) for line in (SAMPLES / "hh_rlhf_sample.jsonl").read_text().splitlines() if line.strip()]
    sft_rows = [{**row, "instruction": f"Case {i}: {row['instruction']}"}
                for i, row in ((i, dolly[i % len(dolly)]) for i in range(n_sft))]
    rm_rows = [{key: text.replace("\n\nHuman: ", f"\n\nHuman: Case {i}: ", 1) for key, text in row.items()}
               for i, row in ((i, hh[i % len(hh)]) for i in range(n_rm))]
    paths = folder / "dolly.jsonl", folder / "hh_rlhf.jsonl"
    for path, rows in zip(paths, (sft_rows, rm_rows)):
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return paths


def judgement(prompt_id: str, k: int = 0) -> Judgement:
    return Judgement(prompt_id=prompt_id, labeler_id="hh-rlhf", completions=[f"good {k}", f"bad {k}"], ranks=[1, 2],
                     likert=[], flags=[], timestamp=0.0, source="human")


# ----------------------------------------------------------------------------------------------- the halves


def test_the_halves_are_disjoint_by_prompt_deterministic_and_balanced():
    rows = [judgement(f"hh-{i}", k) for i in range(300) for k in range(1 + i % 3)]  # 1 to 3 comparisons a prompt
    proxy, gold = real_track.split_halves(rows, seed=0)
    proxy_ids, gold_ids = {j.prompt_id for j in proxy}, {j.prompt_id for j in gold}
    assert not proxy_ids & gold_ids and proxy_ids | gold_ids == {j.prompt_id for j in rows}
    assert len(proxy) + len(gold) == len(rows)
    assert 120 < len(proxy_ids) < 180  # about half of 300 prompts (binomial sd 8.7)
    again = real_track.split_halves(list(reversed(rows)), seed=0)  # another order, the same sides
    assert [{j.prompt_id for j in half} for half in again] == [proxy_ids, gold_ids]
    more = real_track.split_halves(rows + [judgement(f"hh-{i}") for i in range(300, 400)], seed=0)
    assert proxy_ids <= {j.prompt_id for j in more[0]} and gold_ids <= {j.prompt_id for j in more[1]}
    other = {j.prompt_id for j in real_track.split_halves(rows, seed=1)[0]}
    assert other != proxy_ids


def test_each_part_is_a_sample_across_the_file_not_its_first_rows():
    """The hub's HH-RLHF comes one subset after another: taking the first rows would take one subset."""
    rows = [judgement(f"hh-{i}") for i in range(1000)]
    taken = real_track.sample_by_prompt(rows, 100, "order-0")
    ids = [int(j.prompt_id.removeprefix("hh-")) for j in taken]
    assert len(set(ids)) == 100 and 30 < sum(i >= 500 for i in ids) < 70  # from both halves of the file
    assert taken == real_track.sample_by_prompt(list(reversed(rows)), 100, "order-0")  # whatever the file's order


def test_hash_share_is_fixed_by_the_key_alone():
    assert real_track.hash_share("a") == real_track.hash_share("a") != real_track.hash_share("b")
    assert all(0 <= real_track.hash_share(str(i)) < 1 for i in range(100))


# ----------------------------------------------------------------------------------------------- win rates


def test_win_rates_on_a_hand_made_scorer():
    """The longer answer wins: 1, 0, a tie (0.5), 1 -> 0.625; a model against itself: exactly one half."""
    def judge(prompts, answers):
        return [float(len(a)) for a in answers]

    prompts = ["p1", "p2", "p3", "p4"]
    out = real_track.win_rates(judge, prompts, {"x": ["aaa", "a", "bb", "aaaa"], "same": ["aa"] * 4}, ["aa"] * 4)
    assert out["x"]["winrate"] == 0.625 and out["x"]["n"] == 4
    lo, hi = out["x"]["ci"]
    assert 0 <= lo <= 0.625 <= hi <= 1
    assert out["same"] == {"winrate": 0.5, "ci": [0.5, 0.5], "n": 4}


def test_win_rates_compare_answers_to_the_same_prompt():
    """A scorer that likes the answer naming its prompt: only per-prompt pairing gives 1.0 here."""
    def judge(prompts, answers):
        return [float(p in a) for p, a in zip(prompts, answers)]

    out = real_track.win_rates(judge, ["cat", "dog"], {"m": ["a cat", "a dog"]}, ["a dog", "a cat"])
    assert out["m"]["winrate"] == 1.0


# ----------------------------------------------------------------------------------------------- the data


def test_real_source_without_data_names_the_fields_to_set():
    with pytest.raises(ValueError, match="needs data.real_sft and data.real_rm.*--set data.real_sft="):
        get_profile("smoke", {"data.source": "real"})
    with pytest.raises(ValueError, match="data.source must be one of 'world', 'real'"):
        get_profile("smoke", {"data.source": "Real"})
    assert get_profile("gpt2", {"data.source": "real"}).data.source == "real"  # the profile names both datasets


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    return write_real_samples(tmp_path_factory.mktemp("real-data"))


@pytest.fixture(scope="module")
def tokenizer(files):
    from rlhf_lib.tokenizer import train_tokenizer

    texts = [line for path in files for line in path.read_text().splitlines()]
    return train_tokenizer(texts, vocab_size=400)


def tiny_profile(files: tuple[Path, Path], **changes) -> object:
    sizes = {"data.source": "real", "data.real_sft": str(files[0]), "data.real_rm": str(files[1]),
             "world.corpus_chars": 20_000, "real.sft_records": 30, "real.sft_epochs": 1, "real.rm_comparisons": 12,
             "real.heldout_comparisons": 10, "real.heldout_share": 0.25, "real.ppo_steps": 2,
             "real.n_eval_prompts": 6, "real.max_prompt_tokens": 96, "real.max_len": 128, "sft.batch_size": 8,
             "rm.batch_size": 4, "ppo.batch_size": 4, "ppo.minibatch_size": 2, "ppo.ppo_epochs": 1,
             "ppo.max_new_tokens": 8, "ppo.n_eval_prompts": 4, "ppo.eval_every": 2, "ppo.checkpoint_every": 2,
             "ppo.ptx_batch_size": 2, "ppo.ptx_block_size": 32, "device": "cpu"}
    return get_profile("smoke", {**sizes, **changes})


def test_the_data_is_read_held_out_and_split_by_prompt(files, tokenizer):
    cfg = tiny_profile(files)
    data = real_track.load_real(cfg, tokenizer)
    prompts = {name: {c.prompt for c in getattr(data, name)} for name in ("proxy_half", "gold_half", "heldout")}
    assert not prompts["proxy_half"] & prompts["gold_half"]
    assert not (prompts["proxy_half"] | prompts["gold_half"]) & prompts["heldout"]
    assert {r.prompt for r in data.ppo_prompts} <= prompts["proxy_half"]
    assert {r.prompt for r in data.eval_prompts} <= prompts["heldout"]
    assert data.counts["rm_train"]["rows"] == 60 and data.counts["sft"]["rows"] == 40  # every row was read
    assert 0 < len(data.proxy_half) <= 12 and 0 < len(data.gold_half) <= 12 and 0 < len(data.heldout) <= 10
    assert len(data.sft_train) == 30 and all(r.demonstration for r in data.sft_train)
    assert all(len(c.completions) == 2 and c.ranks == [1, 2] for c in data.proxy_half)  # K = 2, chosen first
    assert real_track.load_real(cfg, tokenizer).proxy_half == data.proxy_half  # deterministic
    with pytest.raises(ValueError, match="raise real.rm_rows"):
        real_track.load_real(tiny_profile(files, **{"real.rm_rows": 2}), tokenizer)


# ----------------------------------------------------------------------------------------------- the whole track


def stand_in(path: Path, tokenizer, n_embd: int, n_layer: int) -> None:
    """A tiny random GPT-2 saved as the profile's base model or GPT-L would be (`base_model.save_base`)."""
    from rlhf_lib.base_model import save_base

    torch.manual_seed(n_embd)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=n_embd, n_layer=n_layer, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    save_base(GPT2LMHeadModel(config), tokenizer, path)


METRIC_KEYS = {
    "sft": {"sft_valid_loss_per_epoch", "valid_loss", "data_counts", "n_sft_records", "n_sft_valid",
            "n_proxy_comparisons", "n_gold_comparisons", "n_heldout_pairs", "n_ppo_prompts", "n_eval_prompts"},
    "rm": {"acc_heldout_pairs", "gold_rm_acc_heldout_pairs", "acc_train_data", "gold_rm_acc_train_data",
           "gold_rm_base", "n_heldout_pairs"},
    "ppo": {"ppo_curves", "ppo_eval", "kl_final", "ptx_coef"},
    "eval": {"gold_rm_winrate_vs_sft", "gold_rm_winrate_vs_sft_ci", "proxy_rm_score", "proxy_rm_score_ci",
             "gold_rm_score", "gold_rm_score_ci", "kl_to_sft", "kl_to_sft_ci", "n_eval_prompts"}}
"""What each stage's `metrics.json` in `artifacts/<run>-real/` must hold (notebook 08 and the main job's report read
them)."""


def test_build_real_runs_the_track_on_tiny_models(files, tokenizer, tmp_path, monkeypatch):
    from rlhf_lib.baselines import large_dir
    from rlhf_lib.base_model import model_dir

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    cfg = tiny_profile(files)
    stand_in(model_dir(cfg.name), tokenizer, n_embd=32, n_layer=1)
    stand_in(large_dir(cfg.name), tokenizer, n_embd=48, n_layer=2)
    stages = real_track.build_real(cfg, progress=False)

    run = tmp_path / "smoke-real"  # the track's own folder: the world's `smoke/rm/` is not touched
    assert set(stages) == set(REAL_STAGES) and not (tmp_path / "smoke" / "rm").exists()
    for stage, keys in METRIC_KEYS.items():
        assert keys <= set(stages[stage]), f"{stage}: missing {sorted(keys - set(stages[stage]))}"
        assert json.loads((run / stage / "metrics.json").read_text()).keys() == stages[stage].keys()
    sft, rm, ppo, metrics = (stages[s] for s in REAL_STAGES)
    for policy in ("sft", "ppo", "ppo_ptx"):
        rate, (lo, hi) = metrics["gold_rm_winrate_vs_sft"][policy], metrics["gold_rm_winrate_vs_sft_ci"][policy]
        assert 0 <= lo <= rate <= hi <= 1
    assert metrics["kl_to_sft"]["sft"] == 0.0  # SFT's own samples, scored by SFT
    assert 0 <= rm["acc_heldout_pairs"] <= 1 and 0 <= rm["gold_rm_acc_heldout_pairs"] <= 1
    assert sft["n_sft_records"] == 30 and metrics["n_eval_prompts"] > 0
    assert len(sft["sft_valid_loss_per_epoch"]) == 2  # before and after the one epoch: SFT read the records
    assert sft["sft_valid_loss_per_epoch"][1] < sft["sft_valid_loss_per_epoch"][0]
    for name in ("ppo", "ppo_ptx"):
        assert ppo["ppo_curves"][name]["step"] == [1, 2] and len(ppo["ppo_curves"][name]["gold"]) == 2
        assert (run / "ppo" / name / "model" / "config.json").exists()
    for place in ("sft", "rm", "rm/gold"):
        assert (run / place / "model" / "config.json").exists()
    gold_width = json.loads((run / "rm" / "gold" / "model" / "config.json").read_text())["n_embd"]
    assert gold_width == 48  # the gold reward model is GPT-L's, not the SFT model's
