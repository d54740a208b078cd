"""Does a larger reward model read the SFT model's answers better? The paper's RM (6B) is larger than its 1.3B policy.

Builds an RM from GPT-L (the shipped larger base model, 2.3x the parameters) after its own SFT on the same
demonstrations, trains it on the profile's RM rankings with the profile's settings, and reports its accuracy on the
validation rankings notebook 03 reports and on `rm_learning_rate.py`'s dev split (all pairs, pairs of two SFT answers).

    python experiments/rm_from_gpt_l.py --profile default

Needs the profile's artifacts up to notebook 03. Default profile, 2 CPU cores: about 12 minutes.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from rm_learning_rate import dev_split

from rlhf_lib import reward_model as R
from rlhf_lib.artifacts import step_dir
from rlhf_lib.baselines import load_large_base
from rlhf_lib.config import get_profile
from rlhf_lib.dataset import load_dataset
from rlhf_lib.labels import load_judgements
from rlhf_lib.sft import train_sft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    cfg = get_profile(parser.parse_args().profile)
    large, tokenizer = load_large_base(cfg)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        train_sft(large, tokenizer, load_dataset(cfg.name, "sft_train"), load_dataset(cfg.name, "sft_valid"), cfg.sft,
                  Path(tmp), cfg.seed, progress=False, speed=cfg.speed)
    sft_seconds = time.time() - t0
    prompts = {r.prompt_id: r.prompt for name in ("rm_train", "rm_valid") for r in load_dataset(cfg.name, name)}
    labels = step_dir(cfg.name, "rm")
    train = R.comparisons_from(load_judgements(labels / "labels_train.jsonl"), prompts)
    valid = {name: R.comparisons_from(load_judgements(labels / f"labels_{name}.jsonl"), prompts)
             for name in ("valid_train", "valid_heldout")}
    dev, sft_only = dev_split(cfg, 600)
    rm = R.RewardModel.from_lm(large, cfg.seed)
    history = R.train_rm(rm, tokenizer, train, valid, cfg.rm, cfg.seed, evals_per_epoch=1, progress=False,
                         speed=cfg.speed)
    acc = R.accuracies(rm, tokenizer, {"dev": dev, "dev_sft_only": sft_only, **valid},
                       min(cfg.rm.max_len, rm.config.n_positions))
    print(json.dumps({**{k: round(v, 4) for k, v in acc.items()}, "sft_seconds": round(sft_seconds),
                      "rm_seconds": round(history["train_seconds"])}))


if __name__ == "__main__":
    main()
