"""Does the reward model read the writers' slips better with more comparisons? Its learning curve, judged by gold.

PPO can only climb where the reward model points. This trains the profile's reward model on the first N ranked
prompts of `rm_train` for several N (the main job uses `rm.max_prompts`; the prompts after it are sampled and ranked
here exactly as notebook 03 does, so the last point can use all of `rm_train`), and for each reads:

- accuracy on the validation rankings of training and held-out labelers (what notebook 03 reports);
- on a fixed probe of 8 SFT samples for each of 200 PPO training prompts, at the rollout temperature: the
  within-prompt correlation of the RM score with the gold utility, the gold of the RM's favourite of n = 2, 4, 8
  (best-of-n, PPO's target in miniature), and the RM's reading accuracy per slip (pairs that differ in one slip).

The gold utility is read for analysis only, never trained on. `--save` writes `experiments/results/rm_comparisons.json`
(notebook 03 shows it).

    python experiments/rm_comparisons.py --profile default --prompts 600,1200,2400,all --save

Needs the profile's artifacts up to notebook 03. Default profile, 2 CPU cores: about 20 minutes.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rlhf_lib import reward_model as R
from rlhf_lib.artifacts import step_dir, write_json_atomic
from rlhf_lib.base_model import load_base, world_for
from rlhf_lib.config import get_profile
from rlhf_lib.dataset import load_dataset, load_pool
from rlhf_lib.demonstrators import SLIPS, slip_reading_accuracy
from rlhf_lib.labels import load_judgements
from rlhf_lib.policy_eval import sample_and_measure
from rlhf_lib.sft import load_sft

RESULTS = Path(__file__).parent / "results" / "rm_comparisons.json"


def extra_comparisons(cfg, policy, base, tokenizer, world, pool, prompts: dict[str, str]) -> list[R.Comparison]:
    """`rm_train` prompts after the first `rm.max_prompts`, sampled and ranked by training labelers as notebook 03
    ranks its own (other seeds, so other samples)."""
    records = load_dataset(cfg.name, "rm_train")[cfg.rm.max_prompts:]
    if not records:
        return []
    policies = [(policy, 1 - cfg.rm.p_base_policy), (base, cfg.rm.p_base_policy)]
    comps = R.sample_candidates(policies, tokenizer, [r.prompt for r in records], cfg.rm, cfg.labelers.k_min,
                                cfg.labelers.k_max, cfg.seed + 300)[0]
    return R.comparisons_from(R.rank_all(world, records, comps, pool, "train", cfg.seed + 300), prompts)


def probe(cfg, policy, reward_model, tokenizer, world, n_prompts: int, n: int) -> dict:
    """n SFT samples per PPO training prompt at the rollout temperature, with their gold and slip signs."""
    records = load_dataset(cfg.name, "ppo_train")[:n_prompts]
    repeated = [r for r in records for _ in range(n)]
    m = sample_and_measure(policy, None, reward_model, tokenizer, world, repeated, cfg.ppo.max_new_tokens,
                           cfg.ppo.temperature, cfg.seed + 500)
    signs = [{k: (None if row[f"slip_{k}"] is None else bool(row[f"slip_{k}"])) for k in SLIPS} for row in m["rows"]]
    return {"records": records, "repeated": repeated, "texts": m["texts"], "n": n,
            "gold": np.array(m["gold"]).reshape(len(records), n),
            "signs": [signs[i * n:(i + 1) * n] for i in range(len(records))]}


@torch.no_grad()
def read_probe(rm: R.RewardModel, tokenizer, cfg, p: dict) -> dict:
    """The RM against the gold on the probe: within-prompt correlation, best-of-n gold, per-slip reading."""
    rm.eval()
    comps = [R.Comparison(r.prompt, p["texts"][i * p["n"]:(i + 1) * p["n"]], [1] * p["n"])
             for i, r in enumerate(p["records"])]
    scores = []
    for s in range(0, len(comps), 16):
        enc = R.encode_comparisons(tokenizer, comps[s:s + 16], min(cfg.rm.max_len, rm.config.n_positions))
        scores += [row[: p["n"]].float().numpy() for row in R.score_comparisons(rm, enc)]
    rm_scores, gold = np.stack(scores), p["gold"]
    rc, gc = rm_scores - rm_scores.mean(1, keepdims=True), gold - gold.mean(1, keepdims=True)
    out = {"within_prompt_corr": float((rc * gc).sum() / np.sqrt((rc ** 2).sum() * (gc ** 2).sum())),
           "gold_one_sample": float(gold.mean())}
    rows = np.arange(len(gold))
    for k in (2, 4, p["n"]):
        out[f"gold_best_of_{k}"] = float(gold[rows, rm_scores[:, :k].argmax(1)].mean())
    out["slip_reading"] = {k: round(v[0], 3) for k, v in slip_reading_accuracy(list(rm_scores), p["signs"]).items()}
    out["slip_reading_pairs"] = {k: v[1] for k, v in slip_reading_accuracy(list(rm_scores), p["signs"]).items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--prompts", default="600,1200,2400,all", help="training prompts per point ('all': rm_train)")
    parser.add_argument("--probe-prompts", type=int, default=200)
    parser.add_argument("--save", action="store_true", help=f"write the results to {RESULTS}")
    args = parser.parse_args()
    cfg = get_profile(args.profile)
    policy, tokenizer = load_sft(cfg)
    base, _ = load_base(cfg)
    world, pool = world_for(cfg.world), load_pool(cfg.name)
    prompts = {r.prompt_id: r.prompt for name in ("rm_train", "rm_valid") for r in load_dataset(cfg.name, name)}
    labels = step_dir(cfg.name, "rm")
    train = R.comparisons_from(load_judgements(labels / "labels_train.jsonl"), prompts)
    valid = {g: R.comparisons_from(load_judgements(labels / f"labels_valid_{g}.jsonl"), prompts)
             for g in ("train", "heldout")}
    wanted = args.prompts.split(",")
    if any(w == "all" or int(w) > len(train) for w in wanted):
        train += extra_comparisons(cfg, policy, base, tokenizer, world, pool, prompts)
    sizes = [len(train) if w == "all" else min(int(w), len(train)) for w in wanted]
    p = probe(cfg, policy, R.load_rm(cfg), tokenizer, world, args.probe_prompts, 8)
    rows = []
    for n in sizes:
        rm = R.RewardModel.from_lm(load_sft(cfg)[0], cfg.seed)
        t0 = time.time()
        R.train_rm(rm, tokenizer, train[:n], {}, cfg.rm, cfg.seed, evals_per_epoch=1, progress=False, speed=cfg.speed)
        acc = R.accuracies(rm, tokenizer, {f"valid_{g}": c for g, c in valid.items()},
                           min(cfg.rm.max_len, rm.config.n_positions))
        row = {"train_prompts": n, "train_pairs": len(R.as_pairs(train[:n])),
               **{f"acc_{k}": round(v, 4) for k, v in acc.items()}, **read_probe(rm, tokenizer, cfg, p),
               "seconds": round(time.time() - t0)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.save:
        write_json_atomic(RESULTS, {"profile": cfg.name, "seed": cfg.seed, "probe_prompts": args.probe_prompts,
                                    "probe_samples_per_prompt": 8, "rows": rows})
        print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
