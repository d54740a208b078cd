"""The main job, run as a user would: `python -m rlhf_lib.pipeline --profile smoke`.

The full run reuses the session's smoke run (`smoke_artifacts`: the steps the notebooks completed under nbval are
skipped, as a resumed main job skips them), so each notebook executes once per pytest; `--seeds` below runs a notebook
through papermill for real, beside the other tests (a background job, `conftest.Background`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf_lib import pipeline
from rlhf_lib.config import parse_sets
from rlhf_lib.pipeline import NOTEBOOKS

REPO = Path(__file__).resolve().parent.parent


def test_unknown_profile_and_step_are_clear_errors(tmp_path, main_job):
    bad = main_job(tmp_path, "--profile", "nonsense")
    assert bad.returncode == 2 and "Valid profiles: smoke, default, gpt2" in bad.stderr
    bad = main_job(tmp_path, "--profile", "smoke", "--steps", "base,nope")
    assert bad.returncode == 2 and "Valid steps: base" in bad.stderr


def test_papermill_rejects_an_unknown_profile(tmp_path):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match="Valid profiles: smoke, default, gpt2"):
        papermill.execute_notebook(str(REPO / "notebooks" / "00_base_model.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"profile": "nonsense"}, cwd=str(REPO / "notebooks"),
                                   kernel_name="python3", progress_bar=False)


def two_seeds_then_none(job) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Background job: the main job with `--seeds 2` on the data step, in the job's folder, then with `--seeds 0`."""
    two, none = (job.run([sys.executable, "-m", "rlhf_lib.pipeline", "--profile", "smoke", *args], cwd=REPO,
                         timeout=1800) for args in (["--seeds", "2", "--steps", "data"], ["--seeds", "0"]))
    return job.folder, two, none


@pytest.mark.slow
@pytest.mark.background(job=two_seeds_then_none, seconds=40)
def test_seeds_repeat_the_steps_in_their_own_folders_and_report_the_spread(background_result):
    root, result, bad = background_result
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for run in ("smoke", "smoke-seed1"):
        assert (root / run / "data" / "metrics.json").exists()
        assert (root / run / "notebooks" / "01_dataset.ipynb").exists()
    seeds = json.loads((root / "smoke" / "seeds.json").read_text())
    assert all(len(v["values"]) == 2 for v in seeds.values())
    assert "Headline figures over 2 training seeds" in (root / "smoke" / "report.md").read_text()
    assert bad.returncode == 2 and "--seeds must be 1 or more" in bad.stderr


def test_set_reads_values_as_json_else_as_text_and_rejects_a_missing_equals_sign():
    assert parse_sets(["ppo.beta=0.05", "rm.max_prompts=null", "sft.lora=true", "base.hub_model=/models/gpt2",
                       "ppo.ptx_sweep=[1, 4]"]) == {"ppo.beta": 0.05, "rm.max_prompts": None, "sft.lora": True,
                                                    "base.hub_model": "/models/gpt2", "ppo.ptx_sweep": [1, 4]}
    with pytest.raises(ValueError, match="expected field=value"):
        parse_sets(["ppo.beta"])


def test_set_reaches_every_notebook_and_an_unknown_field_is_a_clear_error(tmp_path, monkeypatch, main_job):
    import papermill

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    seen = []

    def fake_execute(source, out, parameters, **kwargs):
        seen.append((Path(source).name, parameters))
        step = dict((nb, s) for s, nb in NOTEBOOKS)[Path(source).name]
        (tmp_path / "smoke" / step).mkdir(parents=True, exist_ok=True)
        (tmp_path / "smoke" / step / "metrics.json").write_text("{}")

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(pipeline, "write_report", lambda *a, **k: tmp_path / "report.md")
    assert pipeline.main(["--profile", "smoke", "--steps", "sft,rm", "--set", "ppo.beta=0.05"]) == 0
    assert seen == [(nb, {"profile": "smoke", "overrides": {"ppo.beta": 0.05}}) for nb in ("02_sft.ipynb",
                                                                                          "03_reward_model.ipynb")]
    bad = main_job(tmp_path, "--profile", "smoke", "--set", "ppo.betta=0.05")
    assert bad.returncode == 2 and "Unknown config field 'ppo.betta'" in bad.stderr and "beta" in bad.stderr


REAL_SETS = ["--set", "data.source=real", "--set", "data.real_sft=dolly.jsonl", "--set", "data.real_rm=hh.jsonl"]


def test_the_real_source_runs_the_base_model_and_notebook_08_and_reports_its_win_rates(tmp_path, monkeypatch,
                                                                                        capsys):
    """`--set data.source=real` swaps the world's notebooks 01-07 for notebook 08 (papermill faked: no training)."""
    import papermill

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    seen = []
    rm = {"acc_heldout_pairs": 0.61, "gold_rm_acc_heldout_pairs": 0.64, "n_heldout_pairs": 200}
    real = {"gold_rm_winrate_vs_sft": {"sft": 0.5, "ppo": 0.58, "ppo_ptx": 0.55},
            "gold_rm_winrate_vs_sft_ci": {"sft": [0.45, 0.55], "ppo": [0.53, 0.63], "ppo_ptx": [0.5, 0.6]},
            "proxy_rm_score": {"sft": 0.0, "ppo": 1.2, "ppo_ptx": 1.0},
            "gold_rm_score": {"sft": 0.0, "ppo": 0.3, "ppo_ptx": 0.2},
            "kl_to_sft": {"sft": 0.0, "ppo": 4.0, "ppo_ptx": 3.5}}

    def fake_execute(source, out, parameters, **kwargs):
        seen.append((Path(source).name, parameters))
        step = dict((nb, s) for s, nb in pipeline.REAL_NOTEBOOKS)[Path(source).name]
        written = {("smoke-real", "rm"): rm, ("smoke-real", "eval"): real} if step == "real" else {("smoke", step): {}}
        for (run, stage), metrics in written.items():
            (tmp_path / run / stage).mkdir(parents=True, exist_ok=True)
            (tmp_path / run / stage / "metrics.json").write_text(json.dumps(metrics))

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    assert pipeline.main(["--profile", "smoke", *REAL_SETS]) == 0
    assert [nb for nb, _ in seen] == ["00_base_model.ipynb", "08_real_data.ipynb"]
    assert seen[1][1]["overrides"]["data.source"] == "real"
    report = (tmp_path / "smoke-real" / "report.md").read_text()  # the track's own folder
    assert "| ppo | 0.580 [0.530, 0.630] | 1.200 | 0.300 | 4.00 |" in report and "02_sft" not in report
    assert "proxy 0.610, gold 0.640 (200 pairs)" in report and "| `acc_heldout_pairs` | 0.61 |" in report
    assert "[08_real_data.ipynb](../smoke/notebooks/08_real_data.ipynb)" in report  # where run_step wrote it
    seen.clear()
    assert pipeline.main(["--profile", "smoke", *REAL_SETS]) == 0  # complete: eval/metrics.json of smoke-real
    assert seen == []

    assert pipeline.main(["--profile", "smoke", *REAL_SETS, "--steps", "sft"]) == 2
    assert "Valid steps: base, real (data.source='real')" in capsys.readouterr().err
    assert pipeline.main(["--profile", "smoke", "--set", "data.source=real"]) == 2
    assert "needs data.real_sft and data.real_rm" in capsys.readouterr().err
    assert pipeline.main(["--profile", "smoke", "--steps", "real"]) == 2  # not a step of the world track
    assert "Valid steps: base, data, sft" in capsys.readouterr().err
