"""Measuring policies: best-of-n picks the RM's favourite, and the alignment-tax claims are computed, not written."""

import math

import pytest

from rlhf_lib import alignment_tax, policy_eval


class FakeWorldScores:
    """Stands in for sample_and_measure: sample i of a prompt gets RM score rm[i] and gold gold[i]."""

    def __init__(self, rm, gold):
        self.rm, self.gold = rm, gold

    def __call__(self, policy, ref, reward_model, tokenizer, world, records, *args, **kwargs):
        n = len(self.rm)
        return {"rm": [self.rm[i % n] for i in range(len(records))],
                "gold": [self.gold[i % n] for i in range(len(records))], "kl": [0.0] * len(records),
                "texts": [""] * len(records)}


def test_best_of_n_keeps_the_rm_favourite_and_reports_its_exact_kl(monkeypatch):
    # per prompt, 4 samples: the RM likes sample 2 best, the truth prefers sample 1
    monkeypatch.setattr(policy_eval, "sample_and_measure", FakeWorldScores([0.0, 1.0, 3.0, 2.0], [1, 9, 2, 5]))
    out = policy_eval.best_of_n(None, None, None, None, ["a", "b", "c"], 4, 8, 1.0, 0)
    assert [o["n"] for o in out] == [1, 2, 4]
    assert [o["rm"] for o in out] == [0.0, 1.0, 3.0] and [o["gold"] for o in out] == [1, 9, 2]
    assert [o["kl"] for o in out] == pytest.approx([0.0, math.log(2) - 0.5, math.log(4) - 0.75])


def test_sample_and_measure_gives_zero_kl_against_itself():
    from rlhf_lib import base_model as bm
    from rlhf_lib.config import get_profile
    from rlhf_lib.data import PromptRecord
    from rlhf_lib.reward_model import RewardModel
    from rlhf_lib.tokenizer import train_tokenizer
    from rlhf_lib.world import build_world

    tok = train_tokenizer(["Mira lives in Oakridge. Tell me more."] * 50, vocab_size=280)
    cfg = get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 48}).base
    policy = bm.new_model(cfg, tok, seed=0)
    rm = RewardModel.from_lm(bm.new_model(cfg, tok, seed=1))
    world = build_world(seed=0, n_people=8, n_places=4, n_animals=4, n_objects=4, n_misconceptions=2)
    import random

    from rlhf_lib.tasks import make_task

    task, _ = make_task(world, random.Random(0), "open_qa", "plain")
    recs = [PromptRecord(prompt_id=f"p{i}", user_id="u", category="open_qa", kind="plain", prompt=task.prompt,
                         task=task.to_dict()) for i in range(3)]
    m = policy_eval.sample_and_measure(policy, policy, rm, tok, world, recs, 6, 1.0, seed=0)
    assert m["kl"] == [0.0, 0.0, 0.0] and len(m["rm"]) == 3 and len(m["gold"]) == 3
    assert all(1 <= g <= 7 for g in m["gold"])


def _model(bench, ppl, gold, gold_ci=0.1):
    return {"benchmark_mean": bench, "heldout_ppl": ppl, "gold": gold, "gold_ci": gold_ci}


def test_tax_findings_follow_the_numbers():
    models = {"sft": _model(0.6, 10, 6.0), "ppo": _model(0.4, 20, 6.5), "ppo_ptx": _model(0.55, 12, 6.45),
              "ppo_big_beta": _model(0.45, 15, 6.2)}
    holds = [f["holds"] for f in alignment_tax.tax_findings(models)]
    assert holds == [True, True, True, True]
    models["ppo"] = _model(0.7, 20, 6.5)  # no tax, ptx no better than big beta, ...
    models["ppo_big_beta"] = _model(0.8, 15, 6.9)
    holds = [f["holds"] for f in alignment_tax.tax_findings(models)]
    assert holds == [False, False, True, False]
