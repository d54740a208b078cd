"""The whole curve: does PPO beat SFT as the demonstrators get sloppier?

The paper's RLHF gains over SFT because labelers write worse than they judge (`rlhf_lib.demonstrators`). This script
trains the pipeline's data, SFT, reward model and PPO at several writers' slip scales (`labelers.slip_scale`: 0 =
perfect writers, 1 = the rates set from the paper's Figure 4, 2 = twice as careless) and measures, on the same
evaluation prompts as notebook 04, PPO minus SFT gold utility (paired, 95% interval) and the held-out labelers' win
rate of PPO against SFT on the test prompts (bootstrap 95% interval), as notebook 06 judges it.

    python experiments/demonstrator_gap.py                      # scales 0, 1, 2 in the default profile
    python experiments/demonstrator_gap.py --scales 0 1 --profile smoke

Scale 1 is the profile itself, so its run is the main job's (`artifacts/<profile>/`, reused when it exists);
other scales train in `artifacts/<profile>-slips<scale>/`. A finished step is not trained again. The reward model's
pairs ablation is skipped outside scale 1 (it does not change the reward model). Writes
`experiments/results/demonstrator_gap.json` and `.png`; notebook 04 shows them. About 15 minutes per scale in the
default profile on 2 CPU cores.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rlhf_lib.artifacts import read_metrics, write_json_atomic  # noqa: E402
from rlhf_lib.config import get_profile  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def profile_at(profile: str, scale: float):
    if scale == get_profile(profile).labelers.slip_scale:
        return get_profile(profile)
    return get_profile(profile, {"labelers.slip_scale": scale, "name": f"{profile}-slips{scale:g}",
                                 "rm.ablation": False})


def train(cfg) -> None:
    """The main job's data, SFT, reward-model and PPO steps, through the library calls `python -m rlhf_lib.train` makes."""
    from rlhf_lib.dataset import build_data
    from rlhf_lib.ppo_trainer import build_ppo
    from rlhf_lib.reward_model import build_rm
    from rlhf_lib.sft import build_sft

    for step, build in (("data", build_data), ("sft", build_sft), ("rm", build_rm), ("ppo", build_ppo)):
        if read_metrics(cfg.name, step) is None:
            print(f"[{cfg.name}] {step} ...", flush=True)
            build(cfg)


def winrate_vs_sft(cfg) -> dict:
    """Held-out labelers judge PPO's test answers against SFT's, as in notebook 06."""
    from rlhf_lib.base_model import world_for
    from rlhf_lib.dataset import load_dataset, load_pool
    from rlhf_lib.evaluation import judge_against_baseline, summarize_judged
    from rlhf_lib.ppo_trainer import load_ppo
    from rlhf_lib.sampling import generate
    from rlhf_lib.sft import load_sft

    world, pool = world_for(cfg.world), load_pool(cfg.name)
    test = load_dataset(cfg.name, "test")[: cfg.eval.n_test_prompts]
    prompts = [r.prompt for r in test]
    sft, tokenizer = load_sft(cfg)
    length, temp = cfg.eval.max_new_tokens, cfg.sft.temperature
    baseline = generate(sft, tokenizer, prompts, length, temperature=temp, seed=cfg.seed + 500)
    answers = generate(load_ppo(cfg)[0], tokenizer, prompts, length, temperature=temp, seed=cfg.seed + 501)
    judged = summarize_judged(judge_against_baseline(world, pool, test, answers, baseline, cfg.seed), cfg.seed)
    return {"winrate_vs_sft": judged["winrate_vs_sft"], "winrate_vs_sft_ci": judged["winrate_vs_sft_ci"],
            "likert": judged["likert"]}


def measure(cfg, scale: float) -> dict:
    data, sft, rm, ppo = (read_metrics(cfg.name, s) for s in ("data", "sft", "rm", "ppo"))
    return {"slip_scale": scale, "run": cfg.name,
            "demo_gold_mean": data["demo_gold_mean"], "oracle_gold_mean": data["oracle_gold_mean"],
            "demo_share_with_slip": data["demo_share_with_slip"],
            "gold_sft": ppo["gold_sft"], "gold_ppo": ppo["gold_ppo"], "gold_oracle": ppo["gold_oracle"],
            "gold_ppo_minus_sft": ppo["gold_ppo_minus_sft"], "gold_ppo_minus_sft_ci": ppo["gold_ppo_minus_sft_ci"],
            "rm_sft": ppo["rm_sft"], "rm_ppo": ppo["rm_ppo"], "kl_final": ppo["kl_final"],
            "acc_train_labelers": rm["acc_train_labelers"], "acc_heldout_labelers": rm["acc_heldout_labelers"],
            "slip_rates_sft": ppo["slip_rates_sft"], "slip_rates_ppo": ppo["slip_rates_ppo"],
            "gold_sft_on_sft_prompts": sft["gold_sft"], **winrate_vs_sft(cfg)}


def plot(rows: list[dict], path: Path) -> None:
    xs = [r["slip_scale"] for r in rows]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8))
    ax1.errorbar(xs, [r["gold_ppo_minus_sft"] for r in rows], yerr=[r["gold_ppo_minus_sft_ci"] for r in rows],
                 fmt="o-", capsize=4)
    ax1.axhline(0, color="k", lw=0.8, ls="--")
    ax1.set(xlabel="writers' slip scale (1 = from the paper)", ylabel="gold utility, PPO minus SFT (paired)",
            title="PPO's gain over SFT")
    lo = [r["winrate_vs_sft"] - r["winrate_vs_sft_ci"][0] for r in rows]
    hi = [r["winrate_vs_sft_ci"][1] - r["winrate_vs_sft"] for r in rows]
    ax2.errorbar(xs, [r["winrate_vs_sft"] for r in rows], yerr=[lo, hi], fmt="o-", capsize=4, color="C3")
    ax2.axhline(0.5, color="k", lw=0.8, ls="--")
    ax2.set(xlabel="writers' slip scale", ylabel="win rate against SFT", ylim=(0.2, 0.8),
            title="Held-out labelers: PPO vs SFT")
    for key, label, style in (("demo_gold_mean", "demonstrations", "s--"), ("gold_sft", "SFT", "o-"),
                              ("gold_ppo", "PPO", "o-"), ("gold_oracle", "oracle", "k:")):
        ax3.plot(xs, [r[key] for r in rows], style, label=label)
    ax3.set(xlabel="writers' slip scale", ylabel="gold utility", title="Where the gap goes")
    ax3.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    args = parser.parse_args()
    rows = []
    for scale in args.scales:
        cfg = profile_at(args.profile, scale)
        train(cfg)
        rows.append(measure(cfg, scale))
        print(json.dumps({k: v for k, v in rows[-1].items() if not isinstance(v, dict)}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    name = "demonstrator_gap" if args.profile == "default" else f"demonstrator_gap_{args.profile}"
    write_json_atomic(RESULTS / f"{name}.json", {"profile": args.profile, "rows": rows})
    plot(rows, RESULTS / f"{name}.png")
    print(f"wrote {RESULTS / name}.json and .png")


if __name__ == "__main__":
    main()
