"""PPO with the gold utility itself as the reward: what could PPO gain here if the reward model were perfect?

An analysis, never part of the pipeline: the gold utility is the simulated labelers' noise-free preference, which
training must never see. Swapping it in for the reward model separates the two reasons PPO can fail to beat SFT, a
reward model that cannot read what matters, and PPO that cannot turn a right reward into a better policy with the
episodes it gets. Everything else is notebook 04's PPO: the same SFT policy and reference, a value model initialised
from the reward model, the same settings unless `--set` changes them.

    python experiments/ppo_on_gold.py --profile default
    python experiments/ppo_on_gold.py --set '{"ppo.lr": 1e-4}'
    python experiments/ppo_on_gold.py --prompts 32      # the same 32 prompts in every rollout batch
    python experiments/ppo_on_gold.py --reward rm       # the same run against the reward model, for comparison

The reward is `(gold - c) / s`, with c the SFT model's mean gold on the evaluation prompts at the rollout temperature
and s = 1 (gold differences are in utility points, the reward model's in standard deviations; advantages are whitened
either way). Prints the evaluation curve, the comparison with SFT at the evaluation temperature (paired over the same
prompts, as notebook 04), the gold of the training batches, and best-of-n by gold on the training prompts: how much
better than one SFT sample the best of 8 would be, the gain a perfect reward puts within reach. About 3 minutes with
the default settings on 2 CPU cores. Needs the profile's SFT model and reward model (notebooks 02 and 03).

Measured in the default profile before the demonstrators slipped (perfect writers, `labelers.slip_scale=0`; seed 0;
PPO minus SFT gold on the 96 evaluation prompts, paired): on the gold,
-0.07 +- 0.16 with the default 960 episodes, +0.02 +- 0.16 with 2,560 (`{"ppo.batch_size": 128,
"ppo.minibatch_size": 32, "ppo.steps": 20}`), +0.19 +- 0.15 with 10,240 (`"ppo.steps": 80`, 26 min); against the
reward model with the same 10,240 episodes, -1.40 +- 0.34 (KL 14 nats).

With the writers' slips at the calibrated scale, runs made with `--save` are in `experiments/results/ppo_on_gold.json`
(one row each: reward, settings, episodes, the curves, PPO minus SFT); notebook 04 prints them.
"""

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import torch

from rlhf_lib import ppo_trainer as T
from rlhf_lib.artifacts import write_json_atomic
from rlhf_lib.evaluation import mean_ci, score_samples
from rlhf_lib.policy_eval import sample_and_measure


RESULTS = Path(__file__).parent / "results" / "ppo_on_gold.json"
"""Where `--save` appends each run's result (notebook 04 shows them)."""


def code_version() -> str:
    """The commit the run's code came from (a row's numbers belong to the code that made them)."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                         text=True)
    return out.stdout.strip() or "unknown"


class GoldReward(torch.nn.Module):
    """Scores prompt + response sequences with the gold utility, where a reward model would score them.

    It finds each sequence's prompt among the known prompts by decoding growing prefixes, so that PPO's trainer can
    call it exactly as it calls the reward model: `scores = model(input_ids, attention_mask)`."""

    def __init__(self, world, tokenizer, records, center: float, scale: float = 1.0) -> None:
        super().__init__()
        self.world, self.tokenizer, self.center, self.scale = world, tokenizer, center, scale
        self.records = {r.prompt: r for r in records}

    def split(self, ids: list[int]) -> tuple[object, str]:
        texts = [self.tokenizer.decode(ids[:k]) for k in range(len(ids) + 1)]
        for k in range(len(ids), 0, -1):  # the longest prefix that is a known prompt
            rec = self.records.get(texts[k])
            if rec is not None:
                break
        else:  # a prompt cut on the left to fit the context: the longest prefix that ends a known prompt
            k, rec = next((k, r) for k in range(len(ids), 0, -1) for r in self.records.values()
                          if r.prompt.endswith(texts[k]))
        return rec, self.tokenizer.decode([t for t in ids[k:] if t != self.tokenizer.eos_token_id])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pairs = [self.split(row[mask.bool()].tolist()) for row, mask in zip(input_ids, attention_mask)]
        rows = score_samples(self.world, [r for r, _ in pairs], [text for _, text in pairs])
        return torch.tensor([(r["gold"] - self.center) / self.scale for r in rows], device=input_ids.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--set", default="{}", help='changes to the profile, e.g. \'{"ppo.lr": 1e-4}\'')
    parser.add_argument("--prompts", type=int, default=0, help="train on only the first N PPO prompts (0: all)")
    parser.add_argument("--reward", choices=("gold", "rm"), default="gold", help="rm: the reward model, as notebook 04")
    parser.add_argument("--save", action="store_true", help=f"append the result to {RESULTS}")
    args = parser.parse_args()
    from rlhf_lib.config import get_profile

    cfg = get_profile(args.profile, json.loads(args.set))
    s = T.setup(cfg)
    prompts = s.prompts[: args.prompts] if args.prompts else s.prompts
    start = T.measure_on_eval_prompts(cfg, s, cfg.ppo, s.ref)
    reward = GoldReward(s.world, s.tokenizer, prompts, center=start["gold"]) if args.reward == "gold" \
        else s.reward_model
    policy, value_model = T.new_policy_and_value(cfg, s, cfg.ppo)
    def evaluate(model, step):  # step 0 is SFT itself, measured above
        return start if step == 0 else T.measure_on_eval_prompts(cfg, s, cfg.ppo, model)

    history = T.train_ppo(policy, s.ref, value_model, reward, s.tokenizer, prompts, cfg.ppo, cfg.seed,
                          evaluate=evaluate,
                          gold=T.gold_scorer(s.world), progress=False, speed=cfg.speed)
    measured = T.compare_with_sft(cfg, s, {"sft": s.ref, "ppo": history["ema"]})
    diff, half = mean_ci([p - q for p, q in zip(measured["ppo"]["gold"], measured["sft"]["gold"])])
    few = min(len(prompts), 128)
    repeated = [r for r in prompts[:few] for _ in range(8)]
    bon = np.array(sample_and_measure(s.ref, None, s.reward_model, s.tokenizer, s.world, repeated,
                                      cfg.ppo.max_new_tokens, cfg.ppo.temperature, cfg.seed + 5)["gold"])
    bon = bon.reshape(few, 8)
    result = {
        "reward": args.reward, "settings": json.loads(args.set), "commit": code_version(),
        "train_prompts": len(prompts),
        "episodes": history["episodes"][-1],
        "eval_curve": [{k: round(e[k], 3) for k in ("step", "kl", "gold")} for e in history["eval"]],
        "gold_sft_eval_temp": round(float(np.mean(measured["sft"]["gold"])), 3),
        "gold_ppo_eval_temp": round(float(np.mean(measured["ppo"]["gold"])), 3),
        "gold_ppo_minus_sft": round(diff, 3), "gold_ppo_minus_sft_ci": round(half, 3),
        "train_gold_first5": round(float(np.mean(history["gold"][:5])), 3),
        "train_gold_last5": round(float(np.mean(history["gold"][-5:])), 3),
        "entropy_first5": round(float(np.mean(history["entropy"][:5])), 3),
        "entropy_last5": round(float(np.mean(history["entropy"][-5:])), 3),
        "kl_train_last": round(history["kl"][-1], 2),
        "train_prompts_sft_gold_one_sample": round(float(bon[:, 0].mean()), 3),
        "train_prompts_sft_gold_best_of_8": round(float(bon.max(1).mean()), 3),
        "seconds": round(history["seconds"][-1])}
    print(json.dumps(result, indent=1))
    if args.save:
        rows = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
        write_json_atomic(RESULTS, {"profile": args.profile, "rows": rows + [result]})


if __name__ == "__main__":
    main()
