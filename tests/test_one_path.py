"""One path per stage: a notebook and `python -m rlhf_lib.train <stage>` call the same library steps in one order.

Each stage's `build_*` function is the notebook's sequence of library calls without the prose and plots, so the two
cannot drift apart (write different metrics, skip a step such as merging the widget's labels). The check reads the
notebook's code cells and the build function's source and compares the order in which each step is first called.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from rlhf_lib import alignment_tax, alternatives, base_model, dataset, ppo_trainer, real_track, reward_model, sft

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

STAGES = {
    "00_base_model.ipynb": (base_model.build_base, ["get_tokenizer", "init_model", "pretrain", "evaluate_base",
                                                    "save_base", "base_summary", "write_metrics"]),
    "01_dataset.ipynb": (dataset.build_data, ["build_datasets", "save_datasets", "calibration_items", "calibrated_pool",
                                              "measure_agreement", "save_pool", "data_metrics", "write_metrics"]),
    "02_sft.ipynb": (sft.build_sft, ["sample_and_score", "few_shot_prefix", "with_lora", "train_sft", "score_oracle",
                                     "sft_metrics", "save_sft"]),
    "03_reward_model.ipynb": (reward_model.build_rm, ["comparison_data", "rm_datasets", "start_ablation", "train_rm",
                                                      "normalize_on_demonstrations", "validation_readings",
                                                      "rm_metrics", "save_rm"]),
    "04_ppo.ipynb": (ppo_trainer.build_ppo, ["setup", "run_ppo_runs", "compare_with_sft", "score_oracle",
                                             "best_of_n_curve", "ppo_metrics", "write_metrics"]),
    "05_ppo_ptx.ipynb": (alignment_tax.build_ppo_ptx, ["setup", "benchmarks_for", "heldout_ids_for", "run_ppo_runs",
                                                       "load_ppo", "evaluate_model", "ptx_metrics", "write_metrics"]),
    "07_alternatives.ipynb": (alternatives.build_alternatives, [
        "setup", "ppo_runs", "rm_comparisons", "dpo_pairs", "run_dpo", "rejection_sampling_data",
        "rejection_sampling_policy", "fresh_prompts", "round2_comparisons", "train_rm_round2",
        "normalize_on_demonstrations", "run_ppo_round2", "best_of_n_points", "frontier", "frontier_fits", "best_at_kl",
        "round2_effect", "judge_methods", "alternatives_metrics", "run_extras", "write_metrics"]),
    "08_real_data.ipynb": (real_track.build_real, [
        "load_base", "load_real", "train_real_sft", "write_stage_metrics", "sft_metrics", "train_proxy_rm",
        "train_gold_rm", "rm_metrics", "run_real_ppo", "ppo_metrics", "load_real_model", "sample_policies", "rm_judge",
        "win_rates", "eval_metrics"]),
}


def first_calls(source: str, steps: list[str]) -> list[str]:
    """The names of `steps` in the order `source` first calls them."""
    calls = [m.group(1) for m in re.finditer(r"\b(\w+)\(", source) if m.group(1) in steps]
    return [c for i, c in enumerate(calls) if c not in calls[:i]]


def test_first_calls_reads_the_order_of_first_calls():
    assert first_calls("b(1)\na(b(2))\nc = 3\nc()", ["a", "b", "c"]) == ["b", "a", "c"]


@pytest.mark.parametrize("notebook", STAGES)
def test_the_notebook_and_its_build_function_call_the_same_steps_in_one_order(notebook):
    build, steps = STAGES[notebook]
    cells = json.loads((NOTEBOOK_DIR / notebook).read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert first_calls(inspect.getsource(build), steps) == steps
    assert first_calls(code, steps) == steps


def key_paths(metrics: dict, prefix: str = "") -> set[str]:
    """Every key of a metrics dict, nested dicts as `outer/inner` (lists are values)."""
    out = set()
    for k, v in metrics.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= key_paths(v, f"{prefix}{k}/")
    return out


def test_key_paths_reads_nested_dicts():
    assert key_paths({"a": 1, "b": {"c": [1, {"d": 2}], "e": {}}}) == {"a", "b", "b/c", "b/e"}
