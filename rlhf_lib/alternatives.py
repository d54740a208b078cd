"""The same preferences, other ways to use them (notebook 07): DPO, best-of-n, rejection sampling and a second round
of RLHF, placed with PPO on one frontier of gold utility against KL to SFT, and judged like notebook 06.

Every method starts from notebook 02's SFT model and uses only what PPO had: the rankings of notebook 03 (DPO), the
reward model trained on them (best-of-n, rejection sampling), or new rankings made the same way (round two). The gold
utility only measures: no training step and no choice of model reads it. The functions, in the notebook's order:

    1. `ppo_runs`: notebook 04's PPO runs and their evaluation curves, read back from their checkpoints
    2. `rm_comparisons`, `dpo_pairs`, `run_dpo`: DPO on the reward model's comparisons (`rlhf_lib.dpo`)
    3. `rejection_sampling_data`, `rejection_sampling_policy`: SFT on the reward model's best of n
    4. `fresh_prompts`, `round2_comparisons`, `train_rm_round2`, `run_ppo_round2`: a second round of RLHF
    5. `best_of_n_points`, `frontier`, `frontier_fits`, `best_at_kl`, `round2_effect`: the frontier
    6. `judge_methods`: the held-out labelers' win rate against SFT, Likert and metadata axes, as in notebook 06
    7. `alternatives_metrics`: `alternatives/metrics.json`

`build_alternatives` calls them in this order for `python -m rlhf_lib.train alternatives` and the main job.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from rlhf_lib.data import PromptRecord, SFTRecord
from rlhf_lib.dpo import PreferencePair, preference_pairs, train_dpo
from rlhf_lib.labels import Judgement
from rlhf_lib.ppo_trainer import PPOSetup, measure_on_eval_prompts, run_ppo
from rlhf_lib.rejection_sampling import Scorer, rejection_sampling_records, reward_model_scorer
from rlhf_lib.reward_model import Comparison, RewardModel, comparisons_from, rank_all, sample_candidates, train_rm

METHODS = ("sft", "best_of_n", "rejection_sampling", "dpo", "ppo", "ppo_round2")
"""The policies judged against SFT, least training first (SFT against itself: the coin flip)."""


def model_dir(profile: str, name: str) -> Path:
    """`artifacts/<profile>/alternatives/<name>/model/`: a policy (dpo, rejection_sampling) or round two's RM."""
    from rlhf_lib.artifacts import step_dir

    return step_dir(profile, "alternatives") / name / "model"


# ---------------------------------------------------------------------------------------------------------------
# 1. PPO, as notebook 04 left it


def ppo_runs(cfg: Any, s: PPOSetup, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Notebook 04's two runs, {"ppo": beta `ppo.beta`, "small_beta": `ppo.small_beta`}, as `run_ppo` returns them
    (`history["eval"]`: KL, RM score and gold on the evaluation prompts over training; `history["ema"]`: the policy).
    A finished run is read back from its checkpoint; notebook 04 runs here first when its models are missing."""
    from rlhf_lib.ppo_trainer import load_ppo

    load_ppo(cfg)
    return {"ppo": run_ppo(cfg, s, "ppo", progress),
            "small_beta": run_ppo(cfg, s, "small_beta", progress, beta=cfg.ppo.small_beta)}


# ---------------------------------------------------------------------------------------------------------------
# 2. DPO


def rm_comparisons(cfg: Any) -> tuple[list[Comparison], dict[str, list[Comparison]]]:
    """The reward model's training comparisons and its two validation sets, read from notebook 03's label files
    (`rm/labels_*.jsonl`; your widget labels merged in as notebook 03 merges them)."""
    from rlhf_lib.labels import load_judgements
    from rlhf_lib.reward_model import load_rm, model_dir as rm_dir, rm_datasets

    load_rm(cfg)  # notebook 03 writes the labels; it runs here when they are missing
    folder = rm_dir(cfg.name).parent
    return rm_datasets(cfg, {name: load_judgements(folder / f"labels_{name}.jsonl")
                             for name in ("train", "valid_train", "valid_heldout")})


def dpo_pairs(cfg: Any, comparisons: list[Comparison]) -> list[PreferencePair]:
    """Every untied pair of the first `dpo.max_prompts` rankings (`dpo.preference_pairs`): the reward model's data."""
    return preference_pairs(comparisons[: cfg.dpo.max_prompts])


def run_dpo(cfg: Any, s: PPOSetup, pairs: list[PreferencePair], progress: bool = True
            ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """DPO from SFT with the frozen SFT model `s.ref` as the reference; saves the policy. `history["eval"]` holds its
    KL, RM score and gold on the evaluation prompts over training, measured like PPO's (`measure_on_eval_prompts`)."""
    from rlhf_lib.base_model import save_base
    from rlhf_lib.sft import load_sft

    policy = load_sft(cfg)[0]
    history = train_dpo(policy, s.ref, s.tokenizer, pairs, cfg.dpo, cfg.seed, progress, cfg.speed,
                        evaluate=lambda model, step: measure_on_eval_prompts(cfg, s, cfg.ppo, model),
                        n_evals=cfg.alternatives.dpo_evals)
    save_base(policy, s.tokenizer, model_dir(cfg.name, "dpo"))
    return policy, history


# ---------------------------------------------------------------------------------------------------------------
# 3. Rejection sampling


def rejection_sampling_data(cfg: Any, s: PPOSetup, scorer: Scorer | None = None) -> list[SFTRecord]:
    """For each of the first `alternatives.rs_prompts` PPO training prompts, `ppo.best_of_n` SFT samples at the
    rollout temperature; the `scorer`'s favourite (default: the reward model) becomes a demonstration."""
    if scorer is None:
        max_len = min(cfg.rm.max_len, s.reward_model.config.n_positions)
        scorer = reward_model_scorer(s.reward_model, s.tokenizer, max_len)
    return rejection_sampling_records(s.ref, s.tokenizer, s.prompts[: cfg.alternatives.rs_prompts], scorer,
                                      cfg.ppo.best_of_n, cfg.ppo.max_new_tokens, cfg.ppo.temperature, cfg.seed + 300)


def rejection_sampling_policy(cfg: Any, records: list[SFTRecord], progress: bool = True
                              ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """SFT's loop (`sft.train_sft`) fine-tunes the SFT model on the kept samples: `alternatives.rs_epochs` passes at
    `alternatives.rs_lr`; the loss is also read on SFT's validation demonstrations. Saves the policy."""
    from rlhf_lib.artifacts import step_dir
    from rlhf_lib.base_model import save_base
    from rlhf_lib.dataset import load_dataset
    from rlhf_lib.sft import load_sft, train_sft

    a = cfg.alternatives
    sft_cfg = dataclasses.replace(cfg.sft, epochs=a.rs_epochs, lr=a.rs_lr, min_lr=a.rs_lr / 10)
    policy, tokenizer = load_sft(cfg)
    history = train_sft(policy, tokenizer, records, load_dataset(cfg.name, "sft_valid"), sft_cfg,
                        step_dir(cfg.name, "alternatives") / "rejection_sampling", cfg.seed, progress=progress,
                        speed=cfg.speed)
    save_base(policy, tokenizer, model_dir(cfg.name, "rejection_sampling"))
    return policy, history


# ---------------------------------------------------------------------------------------------------------------
# 4. A second round of RLHF


def fresh_prompts(cfg: Any) -> list[PromptRecord]:
    """Round two's prompts: the `rm_train` prompts after the first `rm.max_prompts`, `alternatives.round2_prompts`
    of them. They come from the same users and the same split as round one's, so the two rounds differ only in the
    policy that answered, and none of them was ranked in round one (nor reached PPO, whose prompts are `ppo_train`)."""
    from rlhf_lib.dataset import load_dataset

    pool = load_dataset(cfg.name, "rm_train")
    start = len(pool) if cfg.rm.max_prompts is None else cfg.rm.max_prompts
    fresh = pool[start: start + cfg.alternatives.round2_prompts]
    if not fresh:
        raise ValueError(f"No fresh prompts for round two: rm_train has {len(pool)} prompts and round one ranked "
                         f"{start} (rm.max_prompts={cfg.rm.max_prompts}). Lower rm.max_prompts.")
    return fresh


@dataclass
class Round2Data:
    """Round two's rankings and who wrote each ranked completion."""

    records: list[PromptRecord]
    judgements: list[Judgement]
    """One training labeler's ranking per prompt, as in round one (`reward_model.rank_all`)."""
    owners: list[list[str]]
    """Per prompt, per completion: the policy that wrote it ("ppo")."""

    @property
    def comparisons(self) -> list[Comparison]:
        return comparisons_from(self.judgements, {r.prompt_id: r.prompt for r in self.records})


def round2_comparisons(cfg: Any, s: PPOSetup, pool: list, ppo_policy: torch.nn.Module, records: list[PromptRecord]
                       ) -> Round2Data:
    """K samples of the PPO policy per prompt (K in [k_min, k_max], round one's sampling settings `rm.*`), ranked by
    training labelers. Written to `alternatives/labels_round2.jsonl` and `alternatives/samples_round2.jsonl` (with
    each completion's owner)."""
    import json

    from rlhf_lib.artifacts import step_dir, write_text_atomic
    from rlhf_lib.reward_model import write_judgements

    names = ["ppo"]
    lc = cfg.labelers
    completions, owner = sample_candidates([(ppo_policy, 1.0)], s.tokenizer, [r.prompt for r in records], cfg.rm,
                                           lc.k_min, lc.k_max, cfg.seed + 400)
    data = Round2Data(records, rank_all(s.world, records, completions, pool, "train", cfg.seed + 400),
                      [[names[o] for o in row] for row in owner])
    out = step_dir(cfg.name, "alternatives")
    write_judgements(out / "labels_round2.jsonl", data.judgements)
    write_text_atomic(out / "samples_round2.jsonl", "".join(
        json.dumps({"prompt_id": r.prompt_id, "prompt": r.prompt, "completions": c, "owners": o}) + "\n"
        for r, c, o in zip(records, completions, data.owners)))
    return data


def train_rm_round2(cfg: Any, start: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, old: list[Comparison],
                    new: list[Comparison], valid: dict[str, list[Comparison]], progress: bool = True
                    ) -> tuple[RewardModel, dict[str, Any]]:
    """Round two's reward model: from the SFT model `start`, as round one's, on round one's comparisons and the new
    ones together (`train_rm` shuffles them), with round one's settings; read on round one's validation rankings.
    `history["n_comparisons"]` counts the rankings of each round it trained on."""
    rm = RewardModel.from_lm(start, cfg.seed)
    history = train_rm(rm, tokenizer, old + new, valid, cfg.rm, cfg.seed, progress=progress, speed=cfg.speed)
    history["n_comparisons"] = {"round1": len(old), "round2": len(new)}
    return rm, history


def run_ppo_round2(cfg: Any, s: PPOSetup, reward_model: RewardModel, progress: bool = True) -> dict[str, Any]:
    """PPO against round two's reward model (saved first to `alternatives/rm_round2/model`; the value model starts
    from it), with notebook 04's settings, as run `ppo_round2`.

    It restarts from SFT rather than continuing from round one's policy. The frontier measures KL to SFT, so a
    restarted run is read on the same axis as round one's and differs from it only in its reward model: whether the
    better-informed reward model lifts the gold utility, or moves the over-optimisation peak, shows directly.
    Continuing would mix that with twice the training and start the curve where round one ended. (Llama 2 continued
    from earlier checkpoints; for a comparison at equal cost, restarting is the cleaner experiment.)"""
    path = model_dir(cfg.name, "rm_round2")
    reward_model.save(path)
    s2 = dataclasses.replace(s, reward_model=reward_model.requires_grad_(False), reward_model_dir=path, sft_eval={})
    return run_ppo(cfg, s2, "ppo_round2", progress)


# ---------------------------------------------------------------------------------------------------------------
# 5. One frontier


def best_of_n_points(cfg: Any, s: PPOSetup) -> list[dict[str, float]]:
    """Best-of-n from SFT for n = 1, 2, 4, ... `ppo.best_of_n` on the evaluation prompts: notebook 04's curve, read
    from `ppo/metrics.json` (`ppo_trainer.best_of_n_curve` measures it when the file has none)."""
    from rlhf_lib.artifacts import read_metrics
    from rlhf_lib.ppo_trainer import best_of_n_curve

    saved = (read_metrics(cfg.name, "ppo") or {}).get("best_of_n")
    return saved if saved else best_of_n_curve(cfg, s)


def _point(e: dict[str, Any], **where: Any) -> dict[str, Any]:
    return {"kl": e["kl"], "rm": e["rm"], "gold": e["gold"], **where}


def frontier(cfg: Any, s: PPOSetup, runs: dict[str, dict[str, Any]], bon: list[dict[str, float]],
             dpo_history: dict[str, Any], rs_policy: torch.nn.Module, round2: dict[str, Any]
             ) -> dict[str, list[dict[str, Any]]]:
    """Every method's points on the evaluation prompts, sampled at the rollout temperature: {method: [{kl, rm, gold,
    and step or n}]}. PPO (both betas), DPO and round two over training; best-of-n over n; rejection sampling's one
    policy after SFT's point. `rm` is the score of the reward model each method used (round two's: its own)."""
    sft = _point(runs["ppo"]["eval"][0], step=0)
    return {"ppo": [_point(e, step=e["step"]) for e in runs["ppo"]["eval"]],
            "ppo_small_beta": [_point(e, step=e["step"]) for e in runs["small_beta"]["eval"]],
            "best_of_n": [_point(b, n=b["n"]) for b in bon],
            "dpo": [_point(e, step=e["step"]) for e in dpo_history["eval"]],
            "rejection_sampling": [sft, _point(measure_on_eval_prompts(cfg, s, cfg.ppo, rs_policy), step=1)],
            "ppo_round2": [_point(e, step=e["step"]) for e in round2["eval"]]}


def fit_frontier(kl: list[float], gold: list[float], gold_0: float, form: str) -> dict[str, float | None]:
    """Gao et al. (2022)'s functional forms, with d = sqrt(KL) (KL in nats), fitted by linear least squares:

        best-of-n:  gold - gold_0 = d (alpha - beta d)
        RL (PPO):   gold - gold_0 = d (alpha - beta log d)

    Both are linear in (alpha, beta): columns d and -d^2, or d and -d log d (0 at d = 0). `peak_kl` is the KL of the
    fitted maximum, the over-optimisation peak: d* = alpha / (2 beta), or d* = exp(alpha / beta - 1); None when
    beta <= 0 (no peak)."""
    d = np.sqrt(np.clip(np.asarray(kl, dtype=float), 0.0, None))
    y = np.asarray(gold, dtype=float) - gold_0
    if form == "best_of_n":
        second = d ** 2
    elif form == "rl":
        second = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    else:
        raise ValueError(f"Unknown form {form!r}: 'best_of_n' or 'rl'.")
    (alpha, beta), *_ = np.linalg.lstsq(np.stack([d, -second], axis=1), y, rcond=None)
    peak = None
    if beta > 0:
        peak = (alpha / (2 * beta)) ** 2 if form == "best_of_n" else math.exp(min(2 * (alpha / beta - 1), 700.0))
    return {"alpha": float(alpha), "beta": float(beta), "gold_0": float(gold_0),
            "peak_kl": None if peak is None else float(peak), "n_points": int(len(d))}


def frontier_curve(fit: dict[str, float], form: str, kl: np.ndarray) -> np.ndarray:
    """The fitted gold utility at each KL (for the plot)."""
    d = np.sqrt(np.clip(kl, 0.0, None))
    second = d ** 2 if form == "best_of_n" else np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    return fit["gold_0"] + fit["alpha"] * d - fit["beta"] * second


def frontier_fits(points: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """Gao's forms fitted to best-of-n, to PPO (both betas' points together: Gao et al. found the KL penalty moves a
    run along the frontier rather than off it) and to round two's PPO; gold_0 is SFT's gold on the same prompts."""
    sft_gold = points["ppo"][0]["gold"]
    bon = points["best_of_n"]
    ppo = points["ppo"] + points["ppo_small_beta"][1:]
    return {"best_of_n": fit_frontier([p["kl"] for p in bon], [p["gold"] for p in bon], bon[0]["gold"], "best_of_n"),
            "ppo": fit_frontier([p["kl"] for p in ppo], [p["gold"] for p in ppo], sft_gold, "rl"),
            "ppo_round2": fit_frontier([p["kl"] for p in points["ppo_round2"]],
                                       [p["gold"] for p in points["ppo_round2"]], sft_gold, "rl")}


def gold_at_kl(points: list[dict[str, Any]], kl: float) -> float | None:
    """A curve's gold utility at `kl`, interpolated linearly between its points sorted by KL; None when the curve
    does not reach that KL."""
    pts = sorted(points, key=lambda p: p["kl"])
    xs, ys = [p["kl"] for p in pts], [p["gold"] for p in pts]
    return float(np.interp(kl, xs, ys)) if xs[0] <= kl <= xs[-1] else None


def best_at_kl(points: dict[str, list[dict[str, Any]]], kls: tuple[float, ...]) -> dict[str, dict[str, Any]]:
    """{f"{kl:g}": {"best": the method with the highest gold at that KL (None when no curve reaches it),
    "gold": {method: its gold there, or None}}}."""
    out = {}
    for kl in kls:
        gold = {name: gold_at_kl(pts, kl) for name, pts in points.items()}
        reached = {k: v for k, v in gold.items() if v is not None}
        out[f"{kl:g}"] = {"best": max(reached, key=reached.get) if reached else None, "gold": gold}
    return out


def round2_effect(points: dict[str, list[dict[str, Any]]], fits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Round one's and round two's PPO curves side by side: the highest gold each reached and at what KL (`at_end`:
    at its last point, so no over-optimisation peak showed within the run), and the fitted peaks' KL."""
    out: dict[str, Any] = {}
    for name, key in (("round1", "ppo"), ("round2", "ppo_round2")):
        pts = points[key]
        top = max(range(len(pts)), key=lambda i: pts[i]["gold"])
        out[name] = {"peak_gold": pts[top]["gold"], "peak_kl": pts[top]["kl"], "at_end": top == len(pts) - 1,
                     "final_gold": pts[-1]["gold"], "final_kl": pts[-1]["kl"], "fit_peak_kl": fits[key]["peak_kl"]}
    out["lifts_peak_gold"] = bool(out["round2"]["peak_gold"] > out["round1"]["peak_gold"])
    out["peak_at_larger_kl"] = bool(out["round2"]["peak_kl"] > out["round1"]["peak_kl"])
    return out


# ---------------------------------------------------------------------------------------------------------------
# 6. Judged like notebook 06


def best_of_n_answers(policy: torch.nn.Module, reward_model: RewardModel, tokenizer: PreTrainedTokenizerBase,
                      world: Any, records: list[PromptRecord], n: int, max_new_tokens: int, temperature: float,
                      seed: int) -> dict[str, list]:
    """The best-of-n policy's answers: n samples per prompt, the reward model's favourite kept, with its RM score and
    gold; its KL to the sampling policy is log n - (n - 1) / n for every prompt (the bound that is exact when no two
    samples tie)."""
    from rlhf_lib.policy_eval import sample_and_measure

    m = sample_and_measure(policy, None, reward_model, tokenizer, world, [r for r in records for _ in range(n)],
                           max_new_tokens, temperature, seed)
    best = [i * n + int(np.argmax(m["rm"][i * n: (i + 1) * n])) for i in range(len(records))]
    return {key: [m[key][j] for j in best] for key in ("texts", "rm", "gold", "rows")} | \
        {"kl": [math.log(n) - (n - 1) / n] * len(records)}


def judge_methods(cfg: Any, s: PPOSetup, policies: dict[str, torch.nn.Module], pool: list
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list]]]:
    """Every policy in `policies` (and best-of-n from SFT, n = `alternatives.judged_best_of_n`) answers notebook 06's
    test prompts with notebook 06's settings (`eval.max_new_tokens`, `sft.temperature`, seeds); the held-out labelers
    judge each answer against notebook 06's SFT answers (`paper_eval.preference_eval`). Returns, per method, the
    judged summary (win rate and Likert with 95% CIs, the metadata axes) with gold (mean, CI), KL to SFT and RM score
    of the same answers; and the per-answer measurements."""
    from rlhf_lib.dataset import load_dataset
    from rlhf_lib.evaluation import mean_ci
    from rlhf_lib.paper_eval import preference_eval
    from rlhf_lib.policy_eval import sample_and_measure
    from rlhf_lib.sampling import generate

    test = load_dataset(cfg.name, "test")[: cfg.eval.n_test_prompts]
    length, temp = cfg.eval.max_new_tokens, cfg.sft.temperature
    baseline = generate(s.ref, s.tokenizer, [r.prompt for r in test], length, temperature=temp, seed=cfg.seed + 500)
    measured = {name: sample_and_measure(p, None if name == "sft" else s.ref, s.reward_model, s.tokenizer, s.world,
                                         test, length, temp, cfg.seed + 501) for name, p in policies.items()}
    measured["best_of_n"] = best_of_n_answers(s.ref, s.reward_model, s.tokenizer, s.world, test,
                                              cfg.alternatives.judged_best_of_n, length, temp, cfg.seed + 502)
    judged = preference_eval(s.world, pool, test, {k: m["texts"] for k, m in measured.items()}, baseline, cfg.seed)
    for name, m in measured.items():
        for key in ("gold", "kl", "rm"):
            judged[name][key], judged[name][f"{key}_ci"] = mean_ci(m[key])
    return {name: judged[name] for name in METHODS if name in judged}, measured


# ---------------------------------------------------------------------------------------------------------------
# 7. The metrics


def alternatives_metrics(judged: dict[str, dict[str, Any]], measured: dict[str, dict[str, list]],
                         points: dict[str, list[dict[str, Any]]], fits: dict[str, dict[str, Any]],
                         at_kl: dict[str, dict[str, Any]], effect: dict[str, Any], extras: dict[str, Any]
                         ) -> dict[str, Any]:
    """`alternatives/metrics.json`: per method (`METHODS`) gold (mean, `gold_ci`), `kl`, `winrate_vs_sft` (with
    `winrate_vs_sft_ci`), Likert and the metadata axes on the test prompts; `frontier` (the points),
    `frontier_fit` (Gao's coefficients for best_of_n, ppo, ppo_round2), `best_at_kl`, `round2` (its effect, with the
    paired gold difference of round two's PPO minus round one's on the test prompts) and `extras` (counts, times)."""
    from rlhf_lib.evaluation import mean_ci

    diff, half = mean_ci([b - a for a, b in zip(measured["ppo"]["gold"], measured["ppo_round2"]["gold"])])
    return {**judged, "frontier": points, "frontier_fit": fits, "best_at_kl": at_kl,
            "round2": effect | {"gold_minus_round1": diff, "gold_minus_round1_ci": half,
                                "lifts_gold": bool(diff - half > 0)},
            **extras}


def findings_text(metrics: dict[str, Any]) -> str:
    """Notebook 07's conclusions, written from the run's metrics (markdown): the best method at each KL of
    `best_at_kl`, and what round two did."""
    def name(m: str | None) -> str:
        return m.replace("_", " ") if m else "none"

    lines = []
    for kl, row in metrics["best_at_kl"].items():
        reached = {k: v for k, v in row["gold"].items() if v is not None}
        if not reached:
            lines.append(f"- **KL {kl} nats:** no method's curve reaches it in this run.")
            continue
        others = ", ".join(f"{name(k)} {v:.2f}" for k, v in sorted(reached.items(), key=lambda kv: -kv[1])
                           if k != row["best"])
        missing = sorted(set(row["gold"]) - set(reached))
        lines.append(f"- **KL {kl} nats:** the highest gold utility is **{name(row['best'])}**'s "
                     f"({reached[row['best']]:.2f}" + (f"; then {others}" if others else "") + ")"
                     + (f"; not reached by {', '.join(map(name, missing))}" if missing else "") + ".")
    r = metrics["round2"]
    r1, r2 = r["round1"], r["round2"]

    def peak(x: dict[str, Any]) -> str:
        where = "its last point: no peak within the run" if x["at_end"] else "lower after it"
        fit = "no fitted peak" if x["fit_peak_kl"] is None else f"fitted peak at {x['fit_peak_kl']:.2f} nats"
        return f"gold {x['peak_gold']:.2f} at KL {x['peak_kl']:.2f} ({where}; {fit})"

    verdict = "lifts" if r["lifts_gold"] else ("lowers" if r["gold_minus_round1"] + r["gold_minus_round1_ci"] < 0
                                               else "does not clearly change")
    lines += [f"- **Round two** {verdict} the gold utility of PPO's policy on the test prompts "
              f"({r['gold_minus_round1']:+.2f} ± {r['gold_minus_round1_ci']:.2f}, paired). Highest point of each "
              f"curve: round one {peak(r1)}; round two {peak(r2)}. Round two's peak is "
              f"{'higher' if r['lifts_peak_gold'] else 'not higher'} and at a "
              f"{'larger' if r['peak_at_larger_kl'] else 'smaller or equal'} KL."]
    return "\n".join(lines)


def build_alternatives(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Notebook 07's steps in its order, without the prose and plots: PPO's runs, DPO, rejection sampling, round two,
    the frontier and its fits, the judged comparison, `alternatives/metrics.json`."""
    from rlhf_lib.artifacts import write_metrics
    from rlhf_lib.dataset import load_pool
    from rlhf_lib.ppo_trainer import setup
    from rlhf_lib.reward_model import normalize_on_demonstrations
    from rlhf_lib.sft import load_sft

    t0 = time.time()
    s = setup(cfg)
    runs = ppo_runs(cfg, s, progress)
    train, valid = rm_comparisons(cfg)
    pairs = dpo_pairs(cfg, train)
    dpo_policy, dpo_history = run_dpo(cfg, s, pairs, progress)
    rs_records = rejection_sampling_data(cfg, s)
    rs_policy, rs_history = rejection_sampling_policy(cfg, rs_records, progress)
    fresh = fresh_prompts(cfg)
    pool = load_pool(cfg.name)
    r2 = round2_comparisons(cfg, s, pool, runs["ppo"]["ema"], fresh)
    rm2, rm2_history = train_rm_round2(cfg, load_sft(cfg)[0], s.tokenizer, train, r2.comparisons, valid, progress)
    normalize_on_demonstrations(cfg, rm2, s.tokenizer)
    round2 = run_ppo_round2(cfg, s, rm2, progress)
    bon = best_of_n_points(cfg, s)
    points = frontier(cfg, s, runs, bon, dpo_history, rs_policy, round2)
    fits = frontier_fits(points)
    at_kl = best_at_kl(points, cfg.alternatives.frontier_kls)
    effect = round2_effect(points, fits)
    judged, measured = judge_methods(cfg, s, {"sft": s.ref, "rejection_sampling": rs_policy, "dpo": dpo_policy,
                                              "ppo": runs["ppo"]["ema"], "ppo_round2": round2["ema"]}, pool)
    metrics = alternatives_metrics(judged, measured, points, fits, at_kl, effect,
                                   run_extras(pairs, dpo_history, rs_records, rs_history, r2, rm2_history, t0))
    write_metrics(cfg.name, "alternatives", metrics)
    return metrics


def run_extras(pairs: list[PreferencePair], dpo_history: dict[str, Any], rs_records: list[SFTRecord],
               rs_history: dict[str, Any], r2: Round2Data, rm2_history: dict[str, Any], t0: float) -> dict[str, Any]:
    """The counts and times beside the results: DPO's pairs and final preference accuracy, rejection sampling's
    demonstrations, round two's rankings (and who wrote them) and its reward model's accuracy, the step's seconds."""
    return {"dpo_train": {"n_pairs": len(pairs), "final_loss": dpo_history["loss"][-1],
                          "final_accuracy": dpo_history["accuracy"][-1], "train_seconds": dpo_history["train_seconds"]},
            "rejection_sampling_train": {"n_records": len(rs_records), "train_seconds": rs_history["train_seconds"],
                                         "valid_loss": rs_history["valid_loss"]},
            "rm_round2": {"n_comparisons": rm2_history["n_comparisons"],
                          "owners": sorted({o for row in r2.owners for o in row}),
                          "acc_train_labelers": rm2_history["valid_train_acc"][-1],
                          "acc_heldout_labelers": rm2_history["valid_heldout_acc"][-1],
                          "train_seconds": rm2_history["train_seconds"]},
            "seconds": time.time() - t0}
