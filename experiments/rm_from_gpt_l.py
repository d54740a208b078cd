"""Does a larger reward model read the SFT model's answers better? The paper's RM (6B) is larger than its 1.3B policy.

Builds an RM from GPT-L (the shipped larger base model, 2.3x the parameters) after its own SFT on the same
demonstrations, trains it on the profile's RM rankings with the profile's settings, and reads it beside the profile's
own reward model (notebook 03's) on the same sets: accuracy on the validation rankings, on `rm_learning_rate.py`'s
dev split (all pairs, pairs of two SFT answers), the within-prompt correlation with the gold utility and the accuracy
per slip (analysis only: the gold utility is read, never trained on).

    python experiments/rm_from_gpt_l.py --profile default [--save]

Needs the profile's artifacts up to notebook 03. Default profile, 2 CPU cores: about 30 minutes (46 beside other jobs). `--save` writes
`experiments/results/rm_from_gpt_l.json`.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from rm_learning_rate import dev_split

from rlhf_lib import reward_model as R
from rlhf_lib.artifacts import step_dir, write_json_atomic
from rlhf_lib.base_model import world_for
from rlhf_lib.baselines import load_large_base
from rlhf_lib.config import get_profile
from rlhf_lib.dataset import load_dataset, load_pool
from rlhf_lib.labels import load_judgements
from rlhf_lib.sft import train_sft

RESULTS = Path(__file__).parent / "results" / "rm_from_gpt_l.json"


def read(cfg, rm, tokenizer, sets, data) -> dict:
    """Accuracies on `sets` and the readings against the truth on the validation rankings."""
    acc = R.accuracies(rm, tokenizer, sets, min(cfg.rm.max_len, rm.config.n_positions))
    readings = R.validation_readings(cfg, world_for(cfg.world), load_pool(cfg.name), rm, tokenizer, data)
    return {"parameters": sum(p.numel() for p in rm.parameters()), **{f"acc_{k}": round(v, 4) for k, v in acc.items()},
            "rm_gold_correlation": round(readings["correlation"], 4),
            **{f"reading_slip_{s}": round(a, 4) for s, (a, _) in readings["slip_reading"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--save", action="store_true", help=f"write the results to {RESULTS}")
    args = parser.parse_args()
    cfg = get_profile(args.profile)
    large, tokenizer = load_large_base(cfg)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        train_sft(large, tokenizer, load_dataset(cfg.name, "sft_train"), load_dataset(cfg.name, "sft_valid"), cfg.sft,
                  Path(tmp), cfg.seed, progress=False, speed=cfg.speed)
    sft_seconds = time.time() - t0
    prompts = {r.prompt_id: r.prompt for name in ("rm_train", "rm_valid") for r in load_dataset(cfg.name, name)}
    labels = step_dir(cfg.name, "rm")
    data = {name: load_judgements(labels / f"labels_{name}.jsonl") for name in ("train", "valid_train", "valid_heldout")}
    train = R.comparisons_from(data["train"], prompts)
    valid = {name: R.comparisons_from(data[name], prompts) for name in ("valid_train", "valid_heldout")}
    dev, sft_only = dev_split(cfg, 600)
    sets = {"dev": dev, "dev_sft_only": sft_only, **valid}
    rows = {"profile_rm": read(cfg, R.load_rm(cfg), tokenizer, sets, data)}
    print(json.dumps({"profile_rm": rows["profile_rm"]}), flush=True)
    rm = R.RewardModel.from_lm(large, cfg.seed)
    history = R.train_rm(rm, tokenizer, train, valid, cfg.rm, cfg.seed, evals_per_epoch=1, progress=False,
                         speed=cfg.speed)
    rows["gpt_l_rm"] = {**read(cfg, rm, tokenizer, sets, data), "sft_seconds": round(sft_seconds),
                        "rm_seconds": round(history["train_seconds"])}
    print(json.dumps({"gpt_l_rm": rows["gpt_l_rm"]}), flush=True)
    if args.save:
        write_json_atomic(RESULTS, {"profile": cfg.name, "seed": cfg.seed, "n_train_prompts": len(train),
                                    "n_dev_prompts": len(dev), "n_dev_sft_only": len(sft_only), **rows})


if __name__ == "__main__":
    main()
