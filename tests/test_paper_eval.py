"""Notebook 06's machinery: win rates and their intervals, the baselines' data, the findings, the seeds summary."""

import math
import random

import numpy as np
import pytest

from rlhf_lib import evaluation as ev, paper_eval as E
from rlhf_lib.data import PromptRecord
from rlhf_lib.labelers import make_pool
from rlhf_lib.tasks import make_task


@pytest.fixture(scope="module")
def records_and_demos(world):
    rng = random.Random(0)
    out = []
    for i in range(120):
        task, demo = make_task(world, rng, kind="plain")
        out.append((PromptRecord(f"p{i}", "u", task.category, task.kind, task.prompt, task.to_dict()), demo))
    return [r for r, _ in out], [d for _, d in out]


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_more_data():
    rng = np.random.default_rng(0)
    small, big = rng.random(30).tolist(), rng.random(3000).tolist()
    m, lo, hi = ev.bootstrap_ci(small, seed=0)
    assert lo < m < hi and m == pytest.approx(np.mean(small))
    _, lo2, hi2 = ev.bootstrap_ci(big, seed=0)
    assert hi2 - lo2 < (hi - lo) / 5
    assert ev.bootstrap_ci([1.0] * 10) == (1.0, 1.0, 1.0)
    assert all(math.isnan(x) for x in ev.bootstrap_ci([]))


def test_held_out_labelers_prefer_good_answers_and_tie_identical_ones(world, records_and_demos):
    records, demos = records_and_demos
    pool = make_pool(20, 6, seed=0, noise_train=0.5, noise_heldout=0.5)
    junk = ["Shut up, you idiot." for _ in records]
    good = ev.summarize_judged(ev.judge_against_baseline(world, pool, records, demos, junk, seed=0))
    bad = ev.summarize_judged(ev.judge_against_baseline(world, pool, records, junk, demos, seed=0))
    assert good["winrate_vs_sft"] > 0.85 and bad["winrate_vs_sft"] < 0.15
    assert good["winrate_vs_sft_ci"][0] > 0.5 > bad["winrate_vs_sft_ci"][1]
    assert good["likert"] > bad["likert"] + 2
    assert good["appropriate"] > 0.9 > 0.2 > bad["appropriate"]
    assert good["attempts"] > bad["attempts"]
    same = ev.summarize_judged(ev.judge_against_baseline(world, pool, records, demos, demos, seed=0))
    assert same["winrate_vs_sft"] == 0.5 == same["winrate_vs_sft_ci"][0] == same["winrate_vs_sft_ci"][1]  # ties
    assert sum(c["n"] for c in same["per_category"].values()) == len(records)


def test_judges_come_from_the_asked_group(world, records_and_demos, monkeypatch):
    from rlhf_lib import labelers

    records, demos = records_and_demos
    pool = make_pool(12, 4, seed=0)
    seen = []
    real = labelers.judge
    monkeypatch.setattr(labelers, "judge", lambda lab, *a, **k: seen.append(lab.group) or real(lab, *a, **k))
    ev.judge_against_baseline(world, pool, records[:10], demos[:10], demos[:10], 0)
    ev.judge_against_baseline(world, pool, records[:10], demos[:10], demos[:10], 0, group="train")
    assert seen == ["heldout"] * 10 + ["train"] * 10


def test_gpt_ft_data_is_public_task_formats_with_their_answers(world):
    from rlhf_lib.baselines import nlp_finetuning_records
    from rlhf_lib.nlp_tasks import build_benchmarks

    recs = nlp_finetuning_records(world, 10, seed=0)
    assert len(recs) == 30 and len({r.prompt_id for r in recs}) == 30
    assert {r.category for r in recs} == {"closed_qa", "open_qa", "classification"}
    qa = [r for r in recs if r.prompt.endswith("A:")]
    assert qa and all(r.demonstration.startswith(" ") for r in qa)
    bench = {it.prompt for items in build_benchmarks(world, 10, seed=0).values() for it in items}
    assert len(bench & {r.prompt for r in recs}) < len(recs) / 2   # another draw than the tax benchmarks


def test_option_logprobs_are_sums_over_the_option_tokens():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from rlhf_lib.tokenizer import train_tokenizer

    tok = train_tokenizer(["The farmer lives in Oakridge. He has a pet. She has a pet."] * 30, vocab_size=300)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2)).eval()
    ctx, opts = "The farmer lives in Oakridge.", (" He has a pet.", " She has a pet.")
    got = E.option_logprobs(model, tok, ctx, opts)
    for option, value in zip(opts, got):
        c = tok(ctx, add_special_tokens=False)["input_ids"]
        o = tok(option, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([c + o])).logits[0, :-1], -1)
        want = sum(float(logp[len(c) - 1 + i, t]) for i, t in enumerate(o))
        assert value == pytest.approx(want, abs=1e-4)


def fake_metrics(ptx_win=0.6, gpt_win=0.2, width=0.05, **ptx_over):
    def model(win, **kw):
        m = {"winrate_vs_sft": win, "winrate_vs_sft_ci": [win - width, win + width], "n_params": 1e6,
             "hallucinates": 0.4, "truthful": 0.5, "truthful_instruction": 0.5, "truthful_informative": 0.3,
             "toxicity_respectful": 0.1, "toxicity_plain": 0.1, "toxicity_rude": 0.1,
             "bias_relative_entropy": 0.2, "bias_relative_entropy_ci": [0.15, 0.25], "accepts_false_premise": 0.5,
             "corrects_false_premise": 0.2, "hedges": 0.1, "constraints_followed_by_k": {"1": 0.8, "2": 0.6, "3": 0.4}}
        return m | kw
    m = {n: model(gpt_win) for n in E.MODELS}
    m["sft"] = model(0.5)
    m["ppo_ptx"] = model(ptx_win, **ptx_over)
    m["generalisation"] = {"heldout_category": "other", "winrate_vs_gpt_seen": [0.7, 0.6, 0.8],
                           "winrate_vs_gpt_heldout_category": [0.7, 0.55, 0.85],
                           "winrate_vs_sft_by_train_labelers": {"gpt": gpt_win, "ppo_ptx": ptx_win},
                           "winrate_vs_sft_by_heldout_labelers": {"gpt": gpt_win, "ppo_ptx": ptx_win},
                           "winrate_vs_sft_ci_by_train_labelers": {"gpt": [0, 1], "ppo_ptx": [ptx_win - 0.1,
                                                                                          ptx_win + 0.1]}}
    return m


def test_findings_follow_the_numbers_not_the_paper():
    tax = [{"claim": "PPO-ptx recovers the benchmarks better than a larger KL coefficient", "ours": "x",
            "holds": True}]
    good = {f["claim"]: f["holds"] for f in E.findings(fake_metrics(hallucinates=0.1, truthful=0.9,
                                                                    toxicity_respectful=0.02), tax, {})}
    assert all(good.values()) is False  # hedging: PPO-ptx hedges no more than SFT in the fake numbers
    assert good["Labelers prefer InstructGPT (PPO-ptx) to GPT, even to few-shot-prompted GPT"]
    assert good["InstructGPT hallucinates less than GPT on closed-domain tasks"]
    assert good["InstructGPT is less toxic than GPT only when asked to be respectful"]
    assert good["PPO-ptx pays less alignment tax than a larger KL coefficient"]
    # overlapping intervals: a preference the CIs do not support does not hold
    close = {f["claim"]: f["holds"] for f in E.findings(fake_metrics(ptx_win=0.25, gpt_win=0.2), [], {})}
    assert not close["Labelers prefer InstructGPT (PPO-ptx) to GPT, even to few-shot-prompted GPT"]
    assert not close["PPO-ptx pays less alignment tax than a larger KL coefficient"]  # notebook 05 missing
    worse = {f["claim"]: f["holds"] for f in E.findings(fake_metrics(toxicity_plain=0.0, toxicity_respectful=0.05,
                                                                     truthful=0.1), [], {})}
    assert not worse["InstructGPT is less toxic than GPT only when asked to be respectful"]
    assert not worse["InstructGPT is more truthful than GPT (TruthfulQA)"]
    assert all({"claim", "ours", "holds", "test"} <= set(f) for f in E.findings(fake_metrics(), [], {}))


ORDER = ("Labelers prefer PPO-ptx and PPO to SFT, and SFT to GPT prompted and GPT "
         "(PPO-ptx ≈ PPO > SFT > GPT prompted > GPT)")


def headline(m, ppo):
    return {f["claim"]: f["holds"] for f in E.findings(m, [], ppo)}


def test_the_headline_holds_only_when_ppo_beats_sft_by_the_numbers():
    m = fake_metrics(ptx_win=0.62)
    m["ppo"] = m["ppo"] | {"winrate_vs_sft": 0.6, "winrate_vs_sft_ci": [0.55, 0.65]}
    m["gpt_prompted"] = m["gpt_prompted"] | {"winrate_vs_sft": 0.35, "winrate_vs_sft_ci": [0.3, 0.4]}
    won = {"gold_ppo_minus_sft": 0.2, "gold_ppo_minus_sft_ci": 0.1}
    assert headline(m, won)[ORDER] and headline(m, won)["PPO's gold utility is above SFT's"]
    # PPO loses to SFT (the default profile before demonstrators slipped): neither claim holds
    lost = {"gold_ppo_minus_sft": -0.03, "gold_ppo_minus_sft_ci": 0.16}
    m["ppo"] = m["ppo"] | {"winrate_vs_sft": 0.48, "winrate_vs_sft_ci": [0.42, 0.54]}
    assert not headline(m, lost)[ORDER] and not headline(m, lost)["PPO's gold utility is above SFT's"]
    # a gain whose interval reaches 0 is not a finding; nor is a PPO win with PPO-ptx at chance
    assert not headline(m, {"gold_ppo_minus_sft": 0.1, "gold_ppo_minus_sft_ci": 0.12})["PPO's gold utility is above SFT's"]
    m["ppo"] = m["ppo"] | {"winrate_vs_sft": 0.6, "winrate_vs_sft_ci": [0.55, 0.65]}
    m["ppo_ptx"] = m["ppo_ptx"] | {"winrate_vs_sft": 0.52, "winrate_vs_sft_ci": [0.46, 0.58]}
    assert not headline(m, won)[ORDER]
    assert not headline(fake_metrics(), {})["PPO's gold utility is above SFT's"]  # notebook 04 has not run


def test_heldout_category_records_are_all_of_that_category(world):
    recs = E.heldout_category_records(world, "other", 12, seed=0)
    assert len(recs) == 12 and {r.category for r in recs} == {"other"}
    assert {r.task["family"] for r in recs} <= {"legs_sum", "older_town"}


def test_ppo_refuses_an_unknown_heldout_category():
    from rlhf_lib.config import get_profile
    from rlhf_lib.ppo_trainer import setup

    with pytest.raises(ValueError, match="not a prompt category"):
        setup(get_profile("smoke", {"ppo.heldout_category": "cooking"}))


def test_seeds_summary_gives_mean_and_t_interval(tmp_path, monkeypatch):
    from rlhf_lib import pipeline
    from rlhf_lib.artifacts import write_metrics

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    for k, acc in enumerate((0.60, 0.62, 0.64)):
        write_metrics(pipeline.seed_run_name("smoke", k), "rm", {"acc_train_labelers": acc})
    out = pipeline.summarize_seeds("smoke", 3)
    rm = out["rm/acc_train_labelers"]
    assert rm["values"] == pytest.approx([0.60, 0.62, 0.64]) and rm["mean"] == pytest.approx(0.62)
    assert rm["ci"] == pytest.approx(4.303 * 0.02 / math.sqrt(3), rel=1e-3)
    assert out["sft/gold_sft"]["mean"] is None   # a step that never ran is reported as missing, not as 0
    assert (tmp_path / "smoke" / "seeds.json").exists()
    assert pipeline.seed_run_name("smoke", 0) == "smoke" and pipeline.seed_run_name("smoke", 2) == "smoke-seed2"
