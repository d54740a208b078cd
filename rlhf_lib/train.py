"""Train one stage of the pipeline from the command line, in one process or data-parallel on several:

    python -m rlhf_lib.train sft --profile default
    python -m rlhf_lib.train sft rm ppo --profile default   # several stages, in this order, in one process
    python -m rlhf_lib.train real --profile gpt2     # the real-data track (notebook 08)
    accelerate launch --multi_gpu --num_processes 8 -m rlhf_lib.train ppo --profile gpt2

Each stage is the same library call its notebook makes (`build_sft`, `build_rm`, ...). Under `accelerate launch`
every process runs it; the training loops split each batch between the processes and average their gradients
(`rlhf_lib.training`), so the weights stay identical and any process's output is the result. Only the first
process shows progress bars.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

from rlhf_lib.config import PROFILES, get_profile, parse_sets

STAGES = {"base": "rlhf_lib.base_model:build_base", "data": "rlhf_lib.dataset:build_data",
          "sft": "rlhf_lib.sft:build_sft", "rm": "rlhf_lib.reward_model:build_rm",
          "ppo": "rlhf_lib.ppo_trainer:build_ppo", "ppo_ptx": "rlhf_lib.alignment_tax:build_ppo_ptx",
          "eval": "rlhf_lib.paper_eval:build_eval", "alternatives": "rlhf_lib.alternatives:build_alternatives",
          "real": "rlhf_lib.real_track:build_real", "ship": "rlhf_lib.base_model:pretrain_and_ship"}
"""Stage -> the library function its notebook calls (`real`: the real-data track of notebook 08, on the profile's
`data.real_sft` and `data.real_rm`; `ship`: pretrain the base models here and store them in `data/pretrained/`, for
the maintainers)."""


def check_stage(stage: str) -> str:
    """`stage`, or a clear error naming the valid stages."""
    if stage not in STAGES:
        raise ValueError(f"Unknown stage {stage!r}. Valid stages: {', '.join(STAGES)}.")
    return stage


def build(stage: str, profile: str, progress: bool = True, overrides: dict | None = None) -> dict:
    module, name = STAGES[check_stage(stage)].split(":")
    fn = getattr(importlib.import_module(module), name)
    kwargs = {"progress": progress} if "progress" in inspect.signature(fn).parameters else {}
    return fn(get_profile(profile, overrides), **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlhf_lib.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="+", metavar="stage", help=f"one or more of: {', '.join(STAGES)}")
    parser.add_argument("--profile", default="default", help=f"one of: {', '.join(PROFILES)}")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a profile field, as the main job's --set, e.g. --set ppo.beta=0.05 (repeatable)")
    args = parser.parse_args(argv)
    from rlhf_lib.training import process_info

    first = process_info()[0] == 0
    try:  # every name, profile and field checked before any stage runs
        stages, overrides = [check_stage(s) for s in args.stages], parse_sets(args.set)
        get_profile(args.profile, overrides)
        for stage in stages:
            metrics = build(stage, args.profile, progress=first, overrides=overrides)
            if first:
                print(f"{stage}:", {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))})
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
