"""Data parallelism through accelerate: two CPU processes (gloo) train SFT, the reward model and PPO with the
library's unchanged calls, each on its own rows, and end with identical weights."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def launch(job, *args: str) -> subprocess.CompletedProcess:
    """`accelerate launch` with two processes, from a background job (`conftest.Background`); --multi_gpu selects its
    torchrun launcher, and with no GPU the processes talk over gloo on the CPU."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    return job.run(cmd, cwd=REPO, env={**job.env, "OMP_NUM_THREADS": "1"}, timeout=600)


def train_in_two_processes(job) -> tuple[subprocess.CompletedProcess, Path]:
    """Background job: the worker script's SFT, RM and PPO steps in two processes, writing into the job's folder."""
    return launch(job, str(REPO / "tests" / "data_parallel_worker.py"), str(job.folder)), job.folder


@pytest.mark.background(job=train_in_two_processes, seconds=10)
def test_two_processes_train_on_different_rows_and_stay_in_sync(background_result):
    run, out = background_result
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    a, b = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (a["rank"], b["rank"], a["n_proc"]) == (0, 1, 2)
    for key in ("sft", "rm", "ppo_policy", "ppo_value", "ppo_ema"):
        assert a[key] == b[key], f"{key}: the two processes' weights differ"
    assert a["sft"] != a["init"]                      # they trained ...
    for key in ("sft_first_loss", "rm_first_loss", "ppo_first_rm_score"):
        assert a[key] != b[key], key                  # ... each on its own rows


def sft_stage_in_two_processes(job) -> tuple[subprocess.CompletedProcess, Path]:
    """Background job: `python -m rlhf_lib.train sft` in two processes, its artifacts in the job's folder."""
    return launch(job, "-m", "rlhf_lib.train", "sft", "--profile", "smoke"), job.folder


@pytest.mark.slow
@pytest.mark.background(job=sft_stage_in_two_processes, seconds=25)
def test_a_pipeline_stage_runs_data_parallel_through_the_command_line(background_result):
    run, root = background_result
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for step in ("data", "base", "sft"):
        assert (root / "smoke" / step / "metrics.json").exists(), step
    assert (root / "smoke" / "sft" / "model" / "model.safetensors").exists()
    leftovers = [p.name for p in (root / "smoke" / "sft").iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers  # the second process's copies were discarded, not left behind


def test_the_command_line_rejects_an_unknown_stage():
    run = subprocess.run([sys.executable, "-m", "rlhf_lib.train", "finetune", "--profile", "smoke"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Valid stages: base, data, sft" in run.stderr


def echo_stage(cfg) -> dict:
    """A stand-in stage for the command-line tests: returns the fields the test changed."""
    return {"beta": cfg.ppo.beta, "hub_model": cfg.base.hub_model}


def test_the_command_line_takes_the_main_jobs_sets(monkeypatch, capsys):
    from rlhf_lib import train

    monkeypatch.setitem(train.STAGES, "probe", f"{__name__}:echo_stage")
    assert train.main(["probe", "--profile", "smoke", "--set", "ppo.beta=0.05",
                       "--set", "base.hub_model=/models/gpt2"]) == 0
    out = capsys.readouterr().out
    assert "'beta': 0.05" in out and "'hub_model': '/models/gpt2'" in out
    assert train.main(["probe", "--profile", "smoke", "--set", "ppo.no_such_field=1"]) == 2
    assert "no_such_field" in capsys.readouterr().err


def test_the_command_line_runs_several_stages_in_order_and_checks_them_all_first(monkeypatch, capsys):
    from rlhf_lib import train

    ran = []
    monkeypatch.setitem(train.STAGES, "probe", f"{__name__}:echo_stage")
    monkeypatch.setattr(train, "build", lambda stage, *a, **k: ran.append(stage) or {"stage": stage})
    assert train.main(["probe", "base", "probe", "--profile", "smoke"]) == 0
    assert ran == ["probe", "base", "probe"]
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == ["probe", "base", "probe"]
    assert train.main(["probe", "finetune", "--profile", "smoke"]) == 2  # nothing runs: the typo is found first
    assert ran == ["probe", "base", "probe"] and "Unknown stage 'finetune'" in capsys.readouterr().err
