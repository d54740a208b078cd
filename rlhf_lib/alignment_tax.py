"""The alignment tax and PPO-ptx (notebook 05; the paper's Sections 3.5 and 4.2, Figure 29 and Table 14).

RLHF pays for following instructions with worse performance on the "public NLP" tasks its objective never sees.
The paper compares two ways to pay less: a larger KL coefficient beta (stay closer to SFT everywhere) and PPO-ptx
(keep the pretraining likelihood up directly, with weight gamma). Its finding: PPO-ptx recovers most of the public
benchmarks without losing labeler preference, while a larger beta does not recover them as well.
"""

from __future__ import annotations

from typing import Any

import torch

from rlhf_lib.nlp_tasks import TASKS, Item, build_benchmarks, evaluate_benchmarks, heldout_perplexity
from rlhf_lib.ppo_trainer import PPOSetup


def benchmarks_for(cfg: Any) -> dict[str, list[Item]]:
    from rlhf_lib.base_model import world_for

    return build_benchmarks(world_for(cfg.world), cfg.ppo.nlp_items, cfg.seed)


def heldout_ids_for(cfg: Any, tokenizer: Any) -> torch.Tensor:
    from rlhf_lib.base_model import corpus_ids

    return corpus_ids(cfg.world, tokenizer, "heldout")


def evaluate_model(cfg: Any, s: PPOSetup, model: torch.nn.Module, benchmarks: dict[str, list[Item]],
                   heldout_ids: torch.Tensor) -> dict[str, Any]:
    """One model on the benchmarks, held-out perplexity, and its samples' gold utility and RM score."""
    from rlhf_lib.policy_eval import sample_and_measure, summarize_policy

    out = evaluate_benchmarks(model, s.tokenizer, benchmarks)
    out["benchmark_mean"] = sum(out[t] for t in TASKS) / len(TASKS)
    out["heldout_ppl"] = heldout_perplexity(model, heldout_ids, min(cfg.base.block_size, model.config.n_positions))
    m = sample_and_measure(model, s.ref, s.reward_model, s.tokenizer, s.world, s.eval_records,
                           cfg.ppo.max_new_tokens, cfg.sft.temperature, cfg.seed + 11)
    return out | summarize_policy(m)


def tax_findings(models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's alignment-tax claims, each checked against our numbers: {claim, ours, holds}."""
    sft, ppo, ptx, big = (models[k] for k in ("sft", "ppo", "ppo_ptx", "ppo_big_beta"))
    tax = sft["benchmark_mean"] - ppo["benchmark_mean"]
    recovered = lambda m: m["benchmark_mean"] - ppo["benchmark_mean"]  # noqa: E731
    return [
        {"claim": "PPO pays an alignment tax: it is worse than SFT on the public NLP benchmarks",
         "ours": f"benchmark mean SFT {sft['benchmark_mean']:.3f} vs PPO {ppo['benchmark_mean']:.3f} "
                 f"(tax {tax:+.3f}); held-out perplexity {sft['heldout_ppl']:.2f} vs {ppo['heldout_ppl']:.2f}",
         "holds": bool(tax > 0)},
        {"claim": "PPO-ptx recovers the benchmarks better than a larger KL coefficient",
         "ours": f"recovered vs PPO: PPO-ptx {recovered(ptx):+.3f}, larger beta {recovered(big):+.3f}",
         "holds": bool(recovered(ptx) > recovered(big))},
        {"claim": "PPO-ptx keeps the preference gains of PPO (gold utility not lower than PPO's)",
         "ours": f"gold SFT {sft['gold']:.2f}, PPO {ppo['gold']:.2f} ± {ppo['gold_ci']:.2f}, "
                 f"PPO-ptx {ptx['gold']:.2f} ± {ptx['gold_ci']:.2f}",
         "holds": bool(ptx["gold"] >= ppo["gold"] - max(ppo["gold_ci"], ptx["gold_ci"]))},
        {"claim": "A larger beta costs preference (gold utility below PPO's)",
         "ours": f"gold PPO {ppo['gold']:.2f}, larger beta {big['gold']:.2f}",
         "holds": bool(big["gold"] < ppo["gold"])},
    ]


def ptx_metrics(models: dict[str, dict[str, Any]], sweep: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`ppo_ptx/metrics.json`: every model's measurements (`evaluate_model`), the gamma sweep's, the findings."""
    return {**models, "sweep": sweep, "findings": tax_findings(models)}


def build_ppo_ptx(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Notebook 05's steps in its order, without the plots: PPO-ptx, the larger-beta run and the gamma sweep, all
    measured with the base, SFT and PPO models."""
    from rlhf_lib.artifacts import write_metrics
    from rlhf_lib.base_model import load_base
    from rlhf_lib.ppo_trainer import load_ppo, run_ppo_runs, setup

    s = setup(cfg)
    benchmarks, heldout = benchmarks_for(cfg), heldout_ids_for(cfg, s.tokenizer)
    sweep_runs = {f"ptx_sweep_{gamma:g}": {"ptx_coef": gamma} for gamma in cfg.ppo.ptx_sweep}
    runs = run_ppo_runs(cfg, s, {"ppo_ptx": {"ptx_coef": cfg.ppo.ptx_coef_05},
                                 "ppo_big_beta": {"beta": cfg.ppo.big_beta}, **sweep_runs}, progress)
    policies = {"base": load_base(cfg)[0], "sft": s.ref, "ppo": load_ppo(cfg)[0],
                "ppo_ptx": runs["ppo_ptx"]["ema"], "ppo_big_beta": runs["ppo_big_beta"]["ema"]}
    models = {name: evaluate_model(cfg, s, p, benchmarks, heldout) for name, p in policies.items()}
    sweep = {name.removeprefix("ptx_sweep_"): evaluate_model(cfg, s, runs[name]["ema"], benchmarks, heldout)
             for name in sweep_runs}
    metrics = ptx_metrics(models, sweep)
    write_metrics(cfg.name, "ppo_ptx", metrics)
    return metrics
