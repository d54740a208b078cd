"""Choose the reward model's learning rate on a dev split, never on the validation rankings notebook 03 reports.

The dev split is `rm_train` prompts that the reward model does not train on (after the first `rm.max_prompts`),
sampled and ranked by training labelers exactly as its training data. Besides accuracy on all dev pairs it reports
accuracy on pairs of two SFT samples, the pairs PPO has to tell apart. The gold utility is not used.

    python experiments/rm_learning_rate.py --profile default --lrs 1e-3,3e-4,1e-4,5e-5,3e-5
    python experiments/rm_learning_rate.py --lrs 1e-4 --epochs 3     # dev accuracy after each of 3 passes
    python experiments/rm_learning_rate.py --save    # also append each row to experiments/results/rm_learning_rate.json
    python experiments/rm_learning_rate.py --lrs 3e-4,1e-4 --seed 1  # another RM head and batch order: the noise

Needs the profile's SFT model and RM rankings (notebooks 02 and 03, or the main job); one RM per learning rate, about
3 minutes per pass over the rankings in the default profile on 2 CPU cores (5 beside another job). Prints one JSON
line per learning rate; with `--epochs` above 1 the line has the dev accuracies after each pass (`per_epoch`: the
cosine schedule spans all the passes, as it would in training). Notebook 03 prints the saved rows.
"""

import argparse
import json
from pathlib import Path

from rlhf_lib import reward_model as R
from rlhf_lib.artifacts import step_dir, write_json_atomic
from rlhf_lib.base_model import load_base, world_for
from rlhf_lib.config import get_profile
from rlhf_lib.dataset import load_dataset, load_pool
from rlhf_lib.labels import load_judgements
from rlhf_lib.sft import load_sft

RESULTS = Path(__file__).parent / "results" / "rm_learning_rate.json"
"""Where `--save` appends each row (notebook 03 prints them)."""


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
    parser.add_argument("--epochs", type=int, default=1, help="passes over the rankings (the profile's rm.epochs: 1)")
    parser.add_argument("--save", action="store_true", help=f"append each row to {RESULTS}")
    parser.add_argument("--seed", type=int, default=0, help="the RM's head and batch order (the dev split stays)")
    args = parser.parse_args()
    cfg = get_profile(args.profile)
    tokenizer = load_sft(cfg)[1]
    prompts = {r.prompt_id: r.prompt for r in load_dataset(cfg.name, "rm_train")}
    train = R.comparisons_from(load_judgements(step_dir(cfg.name, "rm") / "labels_train.jsonl"), prompts)
    dev, sft_only = dev_split(cfg, args.dev_prompts)
    for lr in (float(x) for x in args.lrs.split(",")):
        rm = R.RewardModel.from_lm(load_sft(cfg)[0], args.seed)
        sets = {"dev": dev, "dev_sft_only": sft_only}
        history = R.train_rm(rm, tokenizer, train, sets, get_profile(args.profile, {"rm.lr": lr}).rm, args.seed,
                             epochs=args.epochs, evals_per_epoch=1, progress=False, speed=cfg.speed)
        per_epoch = [{"epoch": round(e, 2), **{k: round(history[f"{k}_acc"][i], 4) for k in ("train", *sets)}}
                     for i, e in enumerate(history["eval_step"])]
        row = {"lr": lr, "epochs": args.epochs, "seed": args.seed, "train_prompts": len(train), "dev_prompts": len(dev),
               "dev_sft_only_prompts": len(sft_only), **{k: per_epoch[-1][k] for k in sets},
               "train_data": per_epoch[-1]["train"], "per_epoch": per_epoch, "seconds": round(history["train_seconds"])}
        print(json.dumps(row), flush=True)
        if args.save:
            rows = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
            write_json_atomic(RESULTS, {"profile": cfg.name, "rows": rows + [row]})


if __name__ == "__main__":
    main()
