"""Choose the reward model's learning rate on a dev split, never on the validation rankings notebook 03 reports.

The dev split is `rm_train` prompts that the reward model does not train on (after the first `rm.max_prompts`),
sampled and ranked by training labelers exactly as its training data. Besides accuracy on all dev pairs it reports
accuracy on pairs of two SFT samples, the pairs PPO has to tell apart. The gold utility is not used.

    python experiments/rm_learning_rate.py --profile default --lrs 1e-3,3e-4,1e-4,5e-5,3e-5

Needs the profile's SFT model and RM rankings (notebooks 02 and 03, or the main job); one RM per learning rate, about
3 minutes each in the default profile on 2 CPU cores. Prints one JSON line per learning rate.
"""

import argparse
import json

from rlhf_lib import reward_model as R
from rlhf_lib.artifacts import step_dir
from rlhf_lib.base_model import load_base, world_for
from rlhf_lib.config import get_profile
from rlhf_lib.dataset import load_dataset, load_pool
from rlhf_lib.labels import load_judgements
from rlhf_lib.sft import load_sft


def dev_split(cfg, n_prompts: int, seed: int = 99) -> tuple[list[R.Comparison], list[R.Comparison]]:
    """Dev comparisons, and the same reduced to the completions the SFT model wrote (at least two per prompt)."""
    policy, tokenizer = load_sft(cfg)
    base, _ = load_base(cfg)
    records = load_dataset(cfg.name, "rm_train")[cfg.rm.max_prompts:][:n_prompts]
    policies = [(policy, 1 - cfg.rm.p_base_policy), (base, cfg.rm.p_base_policy)]  # owner 0: SFT, 1: base
    comps, owner = R.sample_candidates(policies, tokenizer, [r.prompt for r in records], cfg.rm, cfg.labelers.k_min,
                                       cfg.labelers.k_max, seed)
    judgements = R.rank_all(world_for(cfg.world), records, comps, load_pool(cfg.name), "train", seed)
    dev = [R.Comparison(r.prompt, j.completions, j.ranks) for r, j in zip(records, judgements)]
    sft_only = [R.Comparison(c.prompt, [y for y, o in zip(c.completions, row) if o == 0],
                             [k for k, o in zip(c.ranks, row) if o == 0]) for c, row in zip(dev, owner)]
    return dev, [c for c in sft_only if len(c.completions) >= 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--lrs", default="1e-3,3e-4,1e-4,5e-5,3e-5")
    parser.add_argument("--dev-prompts", type=int, default=600)
    args = parser.parse_args()
    cfg = get_profile(args.profile)
    tokenizer = load_sft(cfg)[1]
    prompts = {r.prompt_id: r.prompt for r in load_dataset(cfg.name, "rm_train")}
    train = R.comparisons_from(load_judgements(step_dir(cfg.name, "rm") / "labels_train.jsonl"), prompts)
    dev, sft_only = dev_split(cfg, args.dev_prompts)
    for lr in (float(x) for x in args.lrs.split(",")):
        rm = R.RewardModel.from_lm(load_sft(cfg)[0], cfg.seed)
        history = R.train_rm(rm, tokenizer, train, {}, get_profile(args.profile, {"rm.lr": lr}).rm, cfg.seed,
                             evals_per_epoch=1, progress=False, speed=cfg.speed)
        acc = R.accuracies(rm, tokenizer, {"dev": dev, "dev_sft_only": sft_only},
                           min(cfg.rm.max_len, rm.config.n_positions))
        print(json.dumps({"lr": lr, "train_prompts": len(train), **{k: round(v, 4) for k, v in acc.items()},
                          "train_data": round(history["train_acc"][-1], 4),
                          "seconds": round(history["train_seconds"])}), flush=True)


if __name__ == "__main__":
    main()
