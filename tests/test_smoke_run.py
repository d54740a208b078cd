"""What the session's smoke run wrote: nbval executed the notebooks in the `smoke` profile into the session's artifacts
folder (`smoke_artifacts`), and these tests read it, so each notebook executes once per pytest.

This module runs after the other tests and the notebooks (`conftest.pytest_collection_modifyitems`); `train` of every
stage runs beside them from the session's start (a background job, `conftest.Background`).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf_lib.pipeline import NOTEBOOKS
from test_one_path import key_paths


def test_main_job_writes_every_step_and_the_report(smoke_artifacts):
    root = smoke_artifacts
    timings = json.loads((root / "smoke" / "timings.json").read_text())
    for step, notebook in NOTEBOOKS:
        metrics = json.loads((root / "smoke" / step / "metrics.json").read_text())
        assert metrics, step
        assert timings[step]["status"] in ("ran", "skipped")
        if timings[step]["status"] == "ran":  # executed by the main job, not by nbval
            assert (root / "smoke" / "notebooks" / notebook).exists()
    base = json.loads((root / "smoke" / "base" / "metrics.json").read_text())
    assert {"heldout_ppl", "unigram_ppl", "train_seconds"} <= set(base)
    assert base["heldout_ppl"] < base["unigram_ppl"]
    assert (root / "smoke" / "base" / "model" / "model.safetensors").exists()
    report = (root / "smoke" / "report.md").read_text()
    assert "heldout_ppl" in report and "base/figures/loss_curve.png" in report
    assert (root / "smoke" / "base" / "figures" / "loss_curve.png").stat().st_size > 1000
    ev = json.loads((root / "smoke" / "eval" / "metrics.json").read_text())
    for model in ("gpt", "gpt_prompted", "gpt_large", "gpt_large_prompted", "gpt_ft", "sft", "ppo", "ppo_ptx"):
        assert {"winrate_vs_sft", "winrate_vs_sft_ci", "likert", "attempts", "follows_constraints", "hallucinates",
                "appropriate"} <= set(ev[model]), model
        if not model.endswith("prompted"):
            assert {"truthful", "truthful_informative", "toxicity_respectful", "toxicity_plain"} <= set(ev[model])
    assert len(ev["findings"]) >= 9 and ev["n_findings_hold"] == sum(f["holds"] for f in ev["findings"])
    assert "## The paper's findings here" in report and "eval/figures/winrate_and_likert.png" in report


def test_second_run_skips_complete_steps(smoke_artifacts, main_job):
    root = smoke_artifacts
    before = (root / "smoke" / "base" / "metrics.json").stat().st_mtime_ns
    again = main_job(root, "--profile", "smoke")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "complete, skipped" in again.stdout + again.stderr
    assert (root / "smoke" / "base" / "metrics.json").stat().st_mtime_ns == before


def train_every_stage(job) -> tuple[subprocess.CompletedProcess, Path]:
    """Background job: `python -m rlhf_lib.train` with every stage in order, in one process and a fresh artifacts
    folder; what it printed and that folder."""
    steps = [step for step, _ in NOTEBOOKS]
    result = job.run([sys.executable, "-m", "rlhf_lib.train", *steps, "--profile", "smoke"], timeout=1800)
    return result, job.folder


@pytest.mark.slow
@pytest.mark.background(job=train_every_stage, seconds=90)
def test_every_stage_writes_the_same_metric_keys_both_ways(smoke_artifacts, background_result):
    """Each stage by `python -m rlhf_lib.train <stage>` writes the keys its notebook wrote in this session's smoke
    run."""
    result, trained = background_result
    steps = [step for step, _ in NOTEBOOKS]
    assert result.returncode == 0, "train: " + result.stderr[-3000:]
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.split(":")[0] in steps] == steps
    for step, notebook in NOTEBOOKS:
        by_notebook = json.loads((smoke_artifacts / "smoke" / step / "metrics.json").read_text())
        by_train = json.loads((trained / "smoke" / step / "metrics.json").read_text())
        assert key_paths(by_train) == key_paths(by_notebook), (
            f"{step}: only the notebook writes {sorted(key_paths(by_notebook) - key_paths(by_train))}, only "
            f"`train {step}` writes {sorted(key_paths(by_train) - key_paths(by_notebook))}")


@pytest.mark.slow
def test_the_smoke_runs_metrics_have_every_methods_keys(smoke_artifacts):
    metrics = json.loads((smoke_artifacts / "smoke" / "alternatives" / "metrics.json").read_text())
    for method in ("dpo", "best_of_n", "rejection_sampling", "ppo", "ppo_round2"):
        m = metrics[method]
        assert {"gold", "gold_ci", "kl", "winrate_vs_sft", "winrate_vs_sft_ci", "likert", "attempts"} <= set(m)
        assert 0 <= m["winrate_vs_sft_ci"][0] <= m["winrate_vs_sft"] <= m["winrate_vs_sft_ci"][1] <= 1
    for method in ("best_of_n", "ppo"):
        assert {"alpha", "beta"} <= set(metrics["frontier_fit"][method])
    assert metrics["rm_round2"]["owners"] == ["ppo"]
    n = metrics["rm_round2"]["n_comparisons"]
    assert n["round1"] > 0 and n["round2"] > 0
    assert set(metrics["best_at_kl"]) == {"1", "2", "5"}
