"""The real-data track (notebook 08, `data.source="real"`): InstructGPT's three steps on public data, judged by a
larger "gold" reward model as Gao et al. (2022) judged theirs.

The world track knows the truth (the gold utility of notebook 01). Public data has none, so this track builds a
stand-in for the labelers who would judge the final policies:

1. SFT on Dolly (or Alpaca) demonstrations, from the profile's base model (`sft.train_sft`);
2. HH-RLHF's chosen/rejected pairs (K = 2) split by prompt into two disjoint halves: the **proxy** reward model
   starts from SFT, as in the paper, and trains on one half; the **gold** reward model starts from the larger base
   model GPT-L (`baselines.load_large_base`) and trains on the other half (`reward_model.train_rm` for both);
3. PPO against the proxy (value model from the proxy, KL to SFT), and PPO-ptx with the world's pretraining text
   (`ppo_trainer.train_ppo`);
4. SFT, PPO and PPO-ptx sampled on held-out HH-RLHF prompts; the gold model compares each answer with SFT's answer to
   the same prompt: the win rates against SFT, with 95% intervals.

The gold model never trains a policy and never sees the proxy's half, so where PPO exploits the proxy's mistakes, the
gold model can disagree: what Gao et al. measured as over-optimisation. It is a model too, not people: every figure
of this track is a reward model's judgement on public data, never the world's gold utility.

The main job's step "real" runs notebook 08; what it writes goes to the track's own folder `artifacts/<run>-real/`
(`artifacts.real_run_name`), one folder per stage (`config.REAL_STAGES`), each with its `metrics.json`, the base
model staying in `artifacts/<run>/base/`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase

from rlhf_lib.artifacts import real_run_name, step_dir, write_metrics
from rlhf_lib.config import Profile, require_real_data
from rlhf_lib.data import DatasetError, PromptRecord, SFTRecord
from rlhf_lib.evaluation import bootstrap_ci, mean_ci
from rlhf_lib.labels import Judgement
from rlhf_lib.reward_model import (Comparison, RewardModel, comparisons_from, encode_comparisons, normalize,
                                   train_rm)

POLICIES = ("sft", "ppo", "ppo_ptx")
"""The policies the gold reward model judges against SFT ("sft": a second SFT sample against the first)."""

Judge = Callable[[list[str], list[str]], list[float]]
"""judge(prompts, answers) -> one score per answer (a reward model's, or any hand-made scorer)."""

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------------
# 1) The data: demonstrations, and comparisons split by prompt


def hash_share(key: str) -> float:
    """A number in [0, 1) fixed by `key` alone (sha256): the same on every machine and run, unlike `hash()`."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16) / 16 ** 15


def split_by_prompt(items: Sequence[T], share: float, salt: str) -> tuple[list[T], list[T]]:
    """(the items whose prompt falls in the first `share`, the rest), each in its input order.

    Decided per prompt id by `hash_share(salt:prompt_id)`: every comparison of a prompt goes the same way (a model
    tested on a prompt never trained on it), and an item's side depends on nothing else, so reading more rows or
    reordering them never moves one across."""
    first = [x for x in items if hash_share(f"{salt}:{x.prompt_id}") < share]  # type: ignore[attr-defined]
    rest = [x for x in items if hash_share(f"{salt}:{x.prompt_id}") >= share]  # type: ignore[attr-defined]
    return first, rest


def sample_by_prompt(items: Sequence[T], n: int, salt: str) -> list[T]:
    """The first `n` items in an order fixed by a hash of each prompt id: a sample spread over the whole file, which
    matters when a file comes one part after another (the hub's HH-RLHF: harmless-base first, then the helpful
    subsets). A prompt's items stay together, in their order."""
    return sorted(items, key=lambda x: hash_share(f"{salt}:{x.prompt_id}"))[:n]  # type: ignore[attr-defined]


def split_halves(judgements: Sequence[Judgement], seed: int) -> tuple[list[Judgement], list[Judgement]]:
    """(the proxy reward model's half, the gold reward model's half): disjoint by prompt, fixed by `seed` (`data.seed`,
    so that repeats with other training seeds keep the same halves)."""
    return split_by_prompt(judgements, 0.5, f"halves-{seed}")


@dataclass
class RealTrackData:
    """What the track trains and judges on, sized by `Profile.real`."""

    sft_train: list[SFTRecord]
    """Demonstrations SFT trains on."""
    sft_valid: list[SFTRecord]
    """Demonstrations held out for SFT's validation loss."""
    proxy_half: list[Comparison]
    """Comparisons the proxy reward model trains on."""
    gold_half: list[Comparison]
    """Comparisons the gold reward model trains on: other prompts than the proxy's."""
    heldout: list[Comparison]
    """Held-out comparisons (HH-RLHF's test split, or a slice of a local file): both reward models' pair accuracy."""
    ppo_prompts: list[PromptRecord]
    """PPO's prompts: the proxy half's, short enough (`real.max_prompt_tokens`). The gold half's prompts never reach
    a policy."""
    eval_prompts: list[PromptRecord]
    """Held-out prompts on which the policies are sampled and judged."""
    counts: dict[str, Any] = field(default_factory=dict)
    """Rows read and dropped by each rule, and the sizes above."""


def is_local(name: str) -> bool:
    """A local .json/.jsonl file (one split only) rather than a hub dataset (with its "test" split)."""
    return Path(name).suffix in (".json", ".jsonl")


def _short_prompts(records: Sequence[PromptRecord], ids: Sequence[str], tokenizer: PreTrainedTokenizerBase,
                   max_tokens: int) -> list[PromptRecord]:
    """The records of `ids` (first occurrence order, once each) whose prompt has at most `max_tokens` tokens."""
    by_id = {r.prompt_id: r for r in records}
    chosen = [by_id[i] for i in dict.fromkeys(ids)]
    if not chosen:
        return []
    lengths = [len(t) for t in tokenizer([r.prompt for r in chosen], add_special_tokens=False)["input_ids"]]
    return [r for r, n in zip(chosen, lengths) if n <= max_tokens]


def load_real(cfg: Profile, tokenizer: PreTrainedTokenizerBase) -> RealTrackData:
    """Read `data.real_sft` and `data.real_rm` (hub names or local files) through the paper's rules
    (`real_data`), hold out what is judged, split the rest of the comparisons into the two halves, and take each
    part's size (`Profile.real`) as a sample across the file (`sample_by_prompt`)."""
    from rlhf_lib.real_data import load_hh_rlhf, load_instructions

    require_real_data(cfg.data)
    real, seed = cfg.real, cfg.data.seed
    sft = load_instructions(cfg.data.real_sft, cfg.data.real_sft_schema, limit=cfg.data.real_limit)
    sft_valid, sft_train = split_by_prompt(sft.records, cfg.data.valid_fraction, f"sft-valid-{seed}")
    hh = load_hh_rlhf("train", cfg.data.real_rm, limit=real.rm_rows)
    if is_local(cfg.data.real_rm):  # one file: hold out a share of its prompts
        heldout, train = split_by_prompt(hh.judgements, real.heldout_share, f"heldout-{seed}")
        records, test_counts = hh.records, None
    else:  # the hub's test split; a prompt that is also in the training split is not trained on
        test = load_hh_rlhf("test", cfg.data.real_rm, limit=real.rm_rows)
        heldout, test_ids = test.judgements, {j.prompt_id for j in test.judgements}
        train = [j for j in hh.judgements if j.prompt_id not in test_ids]
        records, test_counts = hh.records + test.records, test.counts
    order = f"order-{seed}"  # each part sampled across the file, not its first rows
    proxy, gold = (sample_by_prompt(half, real.rm_comparisons, order) for half in split_halves(train, seed))
    heldout = sample_by_prompt(heldout, real.heldout_comparisons, order)
    prompts = {r.prompt_id: r.prompt for r in records}
    data = RealTrackData(
        sft_train=sample_by_prompt(sft_train, real.sft_records, order),
        sft_valid=sample_by_prompt(sft_valid, max(1, round(real.sft_records * cfg.data.valid_fraction)), order),
        proxy_half=comparisons_from(proxy, prompts), gold_half=comparisons_from(gold, prompts),
        heldout=comparisons_from(heldout, prompts),
        ppo_prompts=_short_prompts(records, [j.prompt_id for j in proxy], tokenizer, real.max_prompt_tokens),
        eval_prompts=_short_prompts(records, [j.prompt_id for j in heldout], tokenizer,
                                    real.max_prompt_tokens)[: real.n_eval_prompts])
    sizes = {"n_sft_records": len(data.sft_train), "n_sft_valid": len(data.sft_valid),
             "n_proxy_comparisons": len(data.proxy_half), "n_gold_comparisons": len(data.gold_half),
             "n_heldout_pairs": len(data.heldout), "n_ppo_prompts": len(data.ppo_prompts),
             "n_eval_prompts": len(data.eval_prompts)}
    data.counts = {"sft": sft.counts, "rm_train": hh.counts, "rm_test": test_counts, **sizes}
    empty = [k.removeprefix("n_") for k, n in sizes.items() if n == 0]
    if empty:
        raise DatasetError(f"The real-data track has no {', '.join(empty)} after the rules ({data.counts}): give "
                           "data.real_sft / data.real_rm more rows, or raise real.rm_rows or real.max_prompt_tokens.")
    return data


# ---------------------------------------------------------------------------------------------------------------
# 2) SFT and the two reward models


MODEL_PLACES = {"sft": "sft", "proxy_rm": "rm", "gold_rm": "rm/gold", "ppo": "ppo/ppo", "ppo_ptx": "ppo/ppo_ptx"}
"""Where each saved model of the track lives under `artifacts/<run>-real/`, as in the world track (the proxy is
`rm/model`, the gold model beside it)."""


def stage_dir(profile: str, stage: str) -> Path:
    """`artifacts/<profile>-real/<stage>/`: the real-data track's folder of a stage (`config.REAL_STAGES`)."""
    return step_dir(real_run_name(profile), stage)


def model_dir(profile: str, part: str) -> Path:
    """The saved model `part` (`MODEL_PLACES`: "sft", "proxy_rm", "gold_rm", "ppo" or "ppo_ptx"), in the
    `save_pretrained` layout."""
    stage, *sub = MODEL_PLACES[part].split("/")
    return stage_dir(profile, stage).joinpath(*sub, "model")


def write_stage_metrics(cfg: Profile, stage: str, metrics: dict[str, Any]) -> Path:
    """`artifacts/<run>-real/<stage>/metrics.json`, atomically."""
    return write_metrics(real_run_name(cfg.name), stage, metrics)


def load_real_model(cfg: Profile, part: str) -> GPT2LMHeadModel:
    """A fresh copy of a saved policy of this track (each later model starts from its own copy: a reward model built
    on the SFT model's transformer would otherwise train the SFT model too)."""
    from rlhf_lib.base_model import load_pretrained

    return load_pretrained(model_dir(cfg.name, part), cfg.device)[0]


def train_real_sft(cfg: Profile, model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase, data: RealTrackData,
                   progress: bool = True) -> dict[str, Any]:
    """SFT on the real demonstrations, in place, with the world track's loop and loss (`sft.train_sft`), for
    `real.sft_epochs`; saves the model. Returns the history (validation loss per epoch)."""
    from rlhf_lib.base_model import save_base
    from rlhf_lib.sft import train_sft

    sft_cfg = dataclasses.replace(cfg.sft, epochs=cfg.real.sft_epochs, max_len=cfg.real.max_len)
    history = train_sft(model, tokenizer, data.sft_train, data.sft_valid, sft_cfg, stage_dir(cfg.name, "sft"),
                        cfg.seed, progress=progress, speed=cfg.speed)
    save_base(model, tokenizer, model_dir(cfg.name, "sft"))
    return history


def _train_and_save_rm(cfg: Profile, rm: RewardModel, tokenizer: PreTrainedTokenizerBase, train: list[Comparison],
                       data: RealTrackData, part: str, progress: bool) -> tuple[RewardModel, dict[str, Any]]:
    """`train_rm` with held-out accuracy, then the paper's normalisation (the demonstrations score 0 on average, so
    the two models' scores sit on comparable scales), then save."""
    rm_cfg = dataclasses.replace(cfg.rm, max_len=cfg.real.max_len)
    history = train_rm(rm, tokenizer, train, {"heldout": data.heldout}, rm_cfg, cfg.seed, progress=progress,
                       speed=cfg.speed)
    history["score_shift"] = normalize(rm, tokenizer, [(r.prompt, r.demonstration) for r in data.sft_train],
                                       min(cfg.real.max_len, rm.config.n_positions))
    rm.save(model_dir(cfg.name, part))
    return rm, history


def train_proxy_rm(cfg: Profile, tokenizer: PreTrainedTokenizerBase, data: RealTrackData, progress: bool = True
                   ) -> tuple[RewardModel, dict[str, Any]]:
    """The reward model PPO optimises: from the SFT model (the paper's choice), on the proxy half."""
    rm = RewardModel.from_lm(load_real_model(cfg, "sft"), cfg.seed)
    return _train_and_save_rm(cfg, rm, tokenizer, data.proxy_half, data, "proxy_rm", progress)


def train_gold_rm(cfg: Profile, tokenizer: PreTrainedTokenizerBase, data: RealTrackData, progress: bool = True
                  ) -> tuple[RewardModel, dict[str, Any]]:
    """The stand-in for the labelers: a larger reward model, from GPT-L (gpt2-medium continued on the world in the
    gpt2 profile; it shares the tokenizer), on the other half. Larger and trained on other prompts, it errs
    differently from the proxy, so it can catch PPO exploiting the proxy (Gao et al., 2022)."""
    from rlhf_lib.baselines import load_large_base

    rm = RewardModel.from_lm(load_large_base(cfg, progress)[0], cfg.seed + 1)
    return _train_and_save_rm(cfg, rm, tokenizer, data.gold_half, data, "gold_rm", progress)


# ---------------------------------------------------------------------------------------------------------------
# 3) PPO and PPO-ptx against the proxy


def rm_judge(rm: RewardModel, tokenizer: PreTrainedTokenizerBase, max_len: int, batch_size: int = 32) -> Judge:
    """A reward model as a judge of texts: each answer encoded as the model learned its comparisons
    (`encode_comparisons`: prompt, answer, EOS), scored at the EOS."""
    device = next(rm.parameters()).device

    @torch.no_grad()
    def judge(prompts: list[str], answers: list[str]) -> list[float]:
        rm.eval()
        scores: list[float] = []
        comps = [Comparison(p, [a], [1]) for p, a in zip(prompts, answers, strict=True)]
        for s in range(0, len(comps), batch_size):
            enc = encode_comparisons(tokenizer, comps[s: s + batch_size], min(max_len, rm.config.n_positions))
            scores += rm(enc["input_ids"].to(device), enc["attention_mask"].to(device)).float().tolist()
        return scores
    return judge


@torch.no_grad()
def measure(policy: torch.nn.Module, ref: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
            judges: dict[str, Judge], max_new_tokens: int, temperature: float, seed: int, batch_size: int = 48
            ) -> dict[str, list]:
    """One sample of `policy` per prompt: its text, its KL to `ref` (sum over its tokens of log pi - log pi_ref,
    whose mean estimates KL(pi || pi_ref)), and each judge's score of it."""
    from rlhf_lib.rollout import response_logprobs, sample_rollout

    out: dict[str, list] = {"texts": [], "kl": []}
    for s in range(0, len(prompts), batch_size):
        torch.manual_seed(seed + s)
        rollout = sample_rollout(policy, tokenizer, prompts[s: s + batch_size], max_new_tokens, temperature)
        out["texts"] += rollout.texts
        out["kl"] += (response_logprobs(policy, rollout, temperature)
                      - response_logprobs(ref, rollout, temperature)).sum(1).tolist()
    return out | {name: judge(prompts, out["texts"]) for name, judge in judges.items()}


def summarize(measured: dict[str, list]) -> dict[str, float]:
    """Mean and 95% half-width of every score list in `measure`'s output (not the texts)."""
    out: dict[str, float] = {}
    for key, values in measured.items():
        if key != "texts":
            out[key], out[f"{key}_ci"] = mean_ci(values)
    return out


def run_real_ppo(cfg: Profile, tokenizer: PreTrainedTokenizerBase, data: RealTrackData, proxy: RewardModel,
                 gold: RewardModel, progress: bool = True) -> dict[str, dict[str, Any]]:
    """PPO and PPO-ptx (gamma = `ppo.ptx_coef_05`, notebook 05's PPO-ptx, on the world's pretraining text: the corpus
    the base model read) with the profile's `ppo.*` settings for `real.ppo_steps` rollout batches, through the world
    track's loop (`ppo_trainer.train_ppo`): policy from SFT, KL to SFT, value model from the proxy. The gold model
    scores each rollout batch and the evaluation prompts, for the curves only: it never reaches a loss.
    Returns {run: history}; `history["ema"]` is the saved EMA policy."""
    from rlhf_lib.base_model import corpus_ids, resolve_device, save_base
    from rlhf_lib.ppo_trainer import train_ppo

    ref = load_real_model(cfg, "sft").requires_grad_(False)
    judges = {"rm": rm_judge(proxy.requires_grad_(False), tokenizer, cfg.real.max_len),
              "gold_rm": rm_judge(gold.requires_grad_(False), tokenizer, cfg.real.max_len)}
    prompts = [r.prompt for r in data.eval_prompts[: cfg.ppo.n_eval_prompts]]
    at_start: dict[str, dict[str, float]] = {}

    def evaluate(model: torch.nn.Module, step: int) -> dict[str, float]:  # step 0 is SFT itself: measured once
        if step == 0 and at_start:
            return at_start["sft"]
        m = summarize(measure(model, ref, tokenizer, prompts, judges, cfg.ppo.max_new_tokens, cfg.ppo.temperature,
                              cfg.seed + 7))
        return at_start.setdefault("sft", m) if step == 0 else m

    def gold_of_batch(records: list[PromptRecord], texts: list[str]) -> list[float]:
        return judges["gold_rm"]([r.prompt for r in records], texts)

    ptx_ids = corpus_ids(cfg.world, tokenizer, "train")
    runs = {}
    for run, gamma in (("ppo", 0.0), ("ppo_ptx", cfg.ppo.ptx_coef_05)):
        ppo_cfg = dataclasses.replace(cfg.ppo, steps=cfg.real.ppo_steps, ptx_coef=gamma)
        value_model = RewardModel.load(model_dir(cfg.name, "proxy_rm"), resolve_device(cfg.device))
        history = train_ppo(load_real_model(cfg, "sft"), ref, value_model, proxy, tokenizer, data.ppo_prompts,
                            ppo_cfg, cfg.seed, stage_dir(cfg.name, "ppo") / run, ptx_ids if gamma > 0 else None,
                            evaluate, gold_of_batch, progress, cfg.speed)
        save_base(history["ema"], tokenizer, model_dir(cfg.name, run))
        runs[run] = history
    return runs


# ---------------------------------------------------------------------------------------------------------------
# 4) Judged by the gold reward model


def sample_policies(cfg: Profile, tokenizer: PreTrainedTokenizerBase, data: RealTrackData,
                    policies: dict[str, torch.nn.Module], proxy: RewardModel, gold: RewardModel
                    ) -> dict[str, dict[str, list]]:
    """Sample each policy ({"sft", "ppo", "ppo_ptx"}) once per held-out prompt at the SFT evaluation temperature
    (`sft.temperature`, as notebook 04 compares), and SFT a second time ("sft_again", another seed): the judged
    answers, their proxy and gold scores, and their KL to SFT."""
    judges = {"rm": rm_judge(proxy, tokenizer, cfg.real.max_len),
              "gold_rm": rm_judge(gold, tokenizer, cfg.real.max_len)}
    prompts = [r.prompt for r in data.eval_prompts]
    seeds = {name: cfg.seed + 11 for name in policies} | {"sft_again": cfg.seed + 12}
    return {name: measure(policies.get(name, policies["sft"]), policies["sft"], tokenizer, prompts, judges,
                          cfg.ppo.max_new_tokens, cfg.sft.temperature, seed) for name, seed in seeds.items()}


def win_rates(judge: Judge, prompts: list[str], answers: dict[str, list[str]], baseline: list[str], seed: int = 0
              ) -> dict[str, dict[str, Any]]:
    """{name: {"winrate", "ci", "n"}}: how often `judge` scores a model's answer above the baseline's answer to the
    same prompt (a tie counts one half), with a percentile-bootstrap 95% interval over prompts
    (`evaluation.bootstrap_ci`, as notebook 06's win rates)."""
    base = judge(prompts, baseline)
    out = {}
    for name, texts in answers.items():
        wins = [0.5 if a == b else float(a > b) for a, b in zip(judge(prompts, texts), base, strict=True)]
        rate, lo, hi = bootstrap_ci(wins, seed=seed)
        out[name] = {"winrate": rate, "ci": [lo, hi], "n": len(wins)}
    return out


def sft_metrics(data: RealTrackData, history: dict[str, Any]) -> dict[str, Any]:
    """`sft/metrics.json`: the validation loss per epoch (epoch 0: the base model), the wall time, the data's counts
    (rows read and dropped by each rule, and every part's size)."""
    return {"sft_valid_loss_per_epoch": history["valid_loss"], "valid_loss": history["valid_loss"][-1],
            "train_seconds": history["train_seconds"], "data_counts": data.counts,
            **{k: v for k, v in data.counts.items() if k.startswith("n_")}}


def rm_metrics(cfg: Profile, data: RealTrackData, proxy_history: dict[str, Any], gold_history: dict[str, Any]
               ) -> dict[str, Any]:
    """`rm/metrics.json`: both reward models' held-out pair accuracy (the proxy's `acc_heldout_pairs`, the gold
    model's `gold_rm_acc_heldout_pairs`) and accuracy on their own pairs, what the gold model started from."""
    return {"acc_heldout_pairs": proxy_history["heldout_acc"][-1],
            "gold_rm_acc_heldout_pairs": gold_history["heldout_acc"][-1],
            "acc_train_data": proxy_history["train_acc"][-1], "gold_rm_acc_train_data": gold_history["train_acc"][-1],
            "score_shift": proxy_history["score_shift"], "gold_rm_score_shift": gold_history["score_shift"],
            "gold_rm_base": cfg.eval.large_hub_model or "GPT-L", "n_proxy_comparisons": len(data.proxy_half),
            "n_gold_comparisons": len(data.gold_half), "n_heldout_pairs": len(data.heldout),
            "train_seconds": {"proxy_rm": proxy_history["train_seconds"], "gold_rm": gold_history["train_seconds"]}}


def ppo_metrics(cfg: Profile, data: RealTrackData, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`ppo/metrics.json`: per run (PPO, PPO-ptx) the curves of each rollout batch (proxy score, KL, gold score,
    reward) and of the evaluation prompts, the final KL, the pretraining coefficient, the wall times."""
    return {"ptx_coef": cfg.ppo.ptx_coef_05, "n_ppo_prompts": len(data.ppo_prompts),
            "kl_final": {run: h["kl"][-1] for run, h in runs.items()},
            "ppo_curves": {run: {k: h[k] for k in ("step", "episodes", "rm_score", "kl", "gold", "reward")}
                           for run, h in runs.items()},
            "ppo_eval": {run: h["eval"] for run, h in runs.items()},
            "train_seconds": {run: h["seconds"][-1] for run, h in runs.items()}}


def eval_metrics(data: RealTrackData, samples: dict[str, dict[str, list]], wins: dict[str, dict[str, Any]]
                 ) -> dict[str, Any]:
    """`eval/metrics.json`: the gold model's win rates of SFT, PPO and PPO-ptx against SFT with their 95% intervals
    (`gold_rm_winrate_vs_sft`, `gold_rm_winrate_vs_sft_ci`), each policy's mean proxy and gold scores and KL to SFT.
    All of them real-data figures, judged by a reward model, not by people."""
    out: dict[str, Any] = {"gold_rm_winrate_vs_sft": {p: wins[p]["winrate"] for p in POLICIES},
                           "gold_rm_winrate_vs_sft_ci": {p: wins[p]["ci"] for p in POLICIES},
                           "n_eval_prompts": len(data.eval_prompts)}
    for key, name in (("rm", "proxy_rm_score"), ("gold_rm", "gold_rm_score"), ("kl", "kl_to_sft")):
        means = {p: mean_ci(samples[p][key]) for p in POLICIES}
        out[name], out[f"{name}_ci"] = {p: m for p, (m, _) in means.items()}, {p: h for p, (_, h) in means.items()}
    return out


def build_real(cfg: Profile, progress: bool = True) -> dict[str, Any]:
    """Notebook 08's steps in its order, without the prose and plots: the base model, the data, SFT, the proxy and
    gold reward models, PPO and PPO-ptx, the gold model's judgement; each stage's `metrics.json` in
    `artifacts/<run>-real/` as soon as the stage ends. Returns {stage: metrics}."""
    from rlhf_lib.base_model import load_base

    model, tokenizer = load_base(cfg)
    data = load_real(cfg, tokenizer)
    out = {}
    sft_history = train_real_sft(cfg, model, tokenizer, data, progress)
    write_stage_metrics(cfg, "sft", out.setdefault("sft", sft_metrics(data, sft_history)))
    proxy, proxy_history = train_proxy_rm(cfg, tokenizer, data, progress)
    gold, gold_history = train_gold_rm(cfg, tokenizer, data, progress)
    write_stage_metrics(cfg, "rm", out.setdefault("rm", rm_metrics(cfg, data, proxy_history, gold_history)))
    runs = run_real_ppo(cfg, tokenizer, data, proxy, gold, progress)
    write_stage_metrics(cfg, "ppo", out.setdefault("ppo", ppo_metrics(cfg, data, runs)))
    policies = {"sft": load_real_model(cfg, "sft"), "ppo": runs["ppo"]["ema"], "ppo_ptx": runs["ppo_ptx"]["ema"]}
    samples = sample_policies(cfg, tokenizer, data, policies, proxy, gold)
    gold_judge = rm_judge(gold, tokenizer, cfg.real.max_len)
    wins = win_rates(gold_judge, [r.prompt for r in data.eval_prompts],
                     {"sft": samples["sft_again"]["texts"], "ppo": samples["ppo"]["texts"],
                      "ppo_ptx": samples["ppo_ptx"]["texts"]}, samples["sft"]["texts"], cfg.seed)
    write_stage_metrics(cfg, "eval", out.setdefault("eval", eval_metrics(data, samples, wins)))
    return out
