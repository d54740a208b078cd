"""The `gpt2` profile rehearsed end to end without the network (issue 21): the world track, then the real-data track.

A stand-in for the hub's GPT-2 and GPT-L: randomly initialised models of GPT-2's shape where it matters (GPT-2's
real tokenizer with its 50,257 tokens and `<|endoftext|>`, a 1,024-token context), narrow and shallow so that a CPU
runs them, saved with `save_pretrained` like a hub download (tests/gpt2_stand_ins.py). The main job then runs the
`gpt2` profile on them, step counts cut down by `--set`, in a subprocess whose every connection to a non-loopback
address is refused: the kernels papermill starts inherit the refusal through PYTHONPATH and still talk to it over
loopback. The real-data track (`data.source="real"`, notebook 08) then runs on the same base model, from small local
files in Dolly's and HH-RLHF's public schemas (`test_real_track.write_real_samples`). The main jobs are background
jobs (`conftest.Background`): they run beside the other tests, and the tests assert on what they returned.

The tokenizer is rebuilt from `gpt2.tiktoken` (openai-whisper's sdist on PyPI, cached in ~/.cache/rlhf_lib); the
tests skip, saying why, only where that file can be neither found nor downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from rlhf_lib import gpt2_tokenizer as g2
from rlhf_lib.config import REAL_STAGES
from rlhf_lib.pipeline import NOTEBOOKS
from test_real_track import METRIC_KEYS as REAL_METRIC_KEYS
from test_real_track import write_real_samples

REFUSE_NETWORK = '''"""Refuse every connection to a non-loopback address, and every name lookup (the offline rehearsal)."""
import ipaddress
import os
import socket

_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _ip(host):
    try:
        return ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return None


def _loopback(host):
    return host == "localhost" or (_ip(host) is not None and _ip(host).is_loopback)


def _refuse(what):
    with open(os.environ["REFUSED_LOG"], "a") as log:
        log.write(f"{os.getpid()} {what!r}\\n")


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        _refuse(address)
        raise ConnectionRefusedError(f"offline rehearsal: no connection to {address!r}")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        _refuse(address)
        return 111  # ECONNREFUSED
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name != "localhost" and _ip(name) is None:  # a name to look up: DNS is the network
        _refuse(name)
        raise socket.gaierror(socket.EAI_NONAME, f"offline rehearsal: no name lookup for {name!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''
"""A `sitecustomize` module: Python imports it at start-up from PYTHONPATH, in the main job and in every kernel."""

SHRINK = {
    "world.n_people": 30, "world.n_places": 8, "world.n_animals": 10, "world.n_objects": 12,
    "world.n_misconceptions": 6, "world.corpus_chars": 120_000, "world.heldout_fraction": 0.1,
    "base.batch_size": 2, "base.max_steps": 2, "base.warmup_steps": 1, "base.eval_every": 2, "base.eval_batches": 1,
    "base.n_samples": 1, "base.sample_tokens": 8,
    "data.scale": 0.005, "data.n_test": 40, "labelers.n_calibration_items": 80, "labelers.k_max": 4,
    "sft.epochs": 1, "sft.batch_size": 8, "sft.n_eval_prompts": 6, "sft.max_new_tokens": 12,
    "rm.max_prompts": 16, "rm.max_valid_prompts": 8, "rm.max_new_tokens": 12, "rm.ablation_prompts": 8,
    "ppo.steps": 2, "ppo.batch_size": 4, "ppo.minibatch_size": 2, "ppo.ppo_epochs": 1, "ppo.max_new_tokens": 12,
    "ppo.checkpoint_every": 1, "ppo.eval_every": 2, "ppo.n_eval_prompts": 4, "ppo.best_of_n": 2,
    "ppo.ptx_batch_size": 2, "ppo.ptx_block_size": 64, "ppo.ptx_sweep": [], "ppo.nlp_items": 4,
    "eval.n_test_prompts": 8, "eval.max_new_tokens": 12, "eval.ft_items": 8, "eval.ft_epochs": 1, "eval.n_probe": 3,
    "speed.side_by_side": 1,
}
"""Step counts and data sizes cut down to CPU seconds. Everything GPT-2 brings stays: its tokenizer and vocabulary,
its 1,024-token context (`base.block_size`), the continued pretraining, the profile's learning rates and lengths.
PPO runs one after another in the notebook's process (`speed.side_by_side=1`), as on the GPU the profile is for."""

SHRINK_ALTERNATIVES = {"dpo.max_prompts": 4, "alternatives.rs_prompts": 4, "alternatives.rs_epochs": 1,
                       "alternatives.round2_prompts": 8, "alternatives.dpo_evals": 1,
                       "alternatives.judged_best_of_n": 2}
"""The same for notebook 07 (DPO, rejection sampling, a second round), when the pipeline has that step."""


SHRINK_REAL = {"real.sft_records": 30, "real.sft_epochs": 1, "real.rm_rows": 1000, "real.rm_comparisons": 12,
               "real.heldout_comparisons": 10, "real.heldout_share": 0.25, "real.ppo_steps": 2,
               "real.n_eval_prompts": 6, "real.max_prompt_tokens": 96, "real.max_len": 128}
"""The real-data track's sizes cut down the same way (its PPO takes `SHRINK`'s ppo.* settings)."""


def shrink() -> dict[str, object]:
    """`SHRINK`, and `SHRINK_ALTERNATIVES` when the pipeline runs notebook 07."""
    return {**SHRINK, **(SHRINK_ALTERNATIVES if "alternatives" in dict(NOTEBOOKS) else {})}


HUB_FREE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
"""Unset in the subprocess: a user offline has not set them, so only the refused sockets keep it off the network."""


def gpt2_tokenizer_dir(folder: Path) -> Path:
    """GPT-2's real tokenizer folder, rebuilt from `gpt2.tiktoken` (the test skips where it cannot be had)."""
    try:
        tiktoken = g2.find_gpt2_tiktoken()
    except g2.TiktokenUnavailable as err:
        pytest.skip(f"GPT-2's tokenizer cannot be obtained here (gpt2.tiktoken not installed, cached or "
                    f"downloadable): {err}")
    return g2.gpt2_tokenizer_from_tiktoken(tiktoken, folder / "gpt2-tokenizer" / "tokenizer")


def offline_env(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` for a subprocess: artifacts under `folder`, the refusal on PYTHONPATH, no hub-offline flags."""
    guard = folder / "refuse_network"
    guard.mkdir(exist_ok=True)  # a second main job in the same folder (the real-data track) reuses it
    (guard / "sitecustomize.py").write_text(REFUSE_NETWORK)
    env = {k: v for k, v in env.items() if k not in HUB_FREE_ENV}
    path = os.pathsep.join(p for p in (str(guard), env.get("PYTHONPATH")) if p)
    return {**env, "PYTHONPATH": path, "REFUSED_LOG": str(folder / "refused.log"),
            "RLHF_ARTIFACTS": str(folder / "artifacts")}


def main_job_offline(job, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """`python -m rlhf_lib.pipeline *args` with the network refused, in a background job's folder."""
    return job.run([sys.executable, "-m", "rlhf_lib.pipeline", *args], cwd=job.folder,
                   env=offline_env(job.folder, job.env), timeout=timeout)


def refused(folder: Path) -> list[str]:
    log = folder / "refused.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_refusal_blocks_the_network_and_keeps_loopback(tmp_path):
    """The guard itself, in a fresh interpreter: a public address is refused, loopback still connects."""
    probe = ("import socket\n"
             "server = socket.create_server(('127.0.0.1', 0))\n"
             "socket.create_connection(server.getsockname(), timeout=5).close()\n"
             "for target in (('93.184.216.34', 80), ('example.com', 80)):\n"
             "    try:\n"
             "        socket.create_connection(target, timeout=5)\n"
             "        print('connected', target)\n"
             "    except OSError as err:\n"
             "        print('refused', type(err).__name__)\n")
    run = subprocess.run([sys.executable, "-c", probe], env=offline_env(tmp_path, dict(os.environ)),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["refused", "ConnectionRefusedError", "refused", "gaierror"]
    assert len(refused(tmp_path)) == 2


def as_sets(sets: dict[str, object]) -> list[str]:
    """The main job's `--set field=value` arguments, each value as JSON."""
    return [f"--set={key}={json.dumps(value)}" for key, value in sets.items()]


def both_tracks_offline(job) -> dict[str, object]:
    """Background job: stand-ins for GPT-2 and GPT-L, then the main job's `gpt2` profile on them, the world's track
    and then the real data's, with the network refused; what each run printed and what it tried to reach."""
    tokenizer_dir = gpt2_tokenizer_dir(job.folder)
    made = job.run([sys.executable, str(Path(__file__).parent / "gpt2_stand_ins.py"), str(tokenizer_dir),
                    str(job.folder)], timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    gpt2, gpt_l = job.folder / "gpt2", job.folder / "gpt2-medium"
    sets = {"base.hub_model": str(gpt2), "eval.large_hub_model": str(gpt_l), "data.real_sft": None,
            "data.real_rm": None, **shrink()}
    runs: dict[str, object] = {"folder": job.folder, "gpt2": gpt2, "gpt_l": gpt_l}
    runs["world"] = main_job_offline(job, "--profile", "gpt2", *as_sets(sets), timeout=900)
    runs["world_refused"] = refused(job.folder)
    if runs["world"].returncode == 0:  # the real-data track on the same base model (complete, so skipped) and GPT-L
        dolly, hh = write_real_samples(job.folder / "real-data")
        real_sets = {**sets, "data.source": "real", "data.real_sft": str(dolly), "data.real_rm": str(hh),
                     **SHRINK_REAL}
        runs["real"] = main_job_offline(job, "--profile", "gpt2", *as_sets(real_sets), timeout=900)
    return runs


@pytest.mark.slow
@pytest.mark.background(job=both_tracks_offline, seconds=200)
def test_the_gpt2_profile_runs_offline_on_local_copies(background_result):
    """Both tracks. The world's: every step writes its metrics; GPT-2 and GPT-L are pretrained further on the world,
    perplexity before and after recorded. The real data's: SFT, the proxy and gold reward models and both PPO runs
    read the local files and write their stages' metrics in `artifacts/gpt2-real/`. Nothing tried the network."""
    runs = background_result
    folder, gpt2, run = runs["folder"], runs["gpt2"], runs["world"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]

    out = folder / "artifacts" / "gpt2"
    for step, _ in NOTEBOOKS:
        assert (out / step / "metrics.json").exists(), f"{step} wrote no metrics.json"
    base = json.loads((out / "base" / "metrics.json").read_text())
    assert base["vocab_size"] == 50258 and base["hub_model"] == str(gpt2)  # GPT-2's tokens and a PAD
    assert base["tokens_seen"] == 2 * 2 * 1024  # continued pretraining on 1,024-token windows
    for metrics in (base, json.loads((out / "base" / "large_metrics.json").read_text())):
        assert {"heldout_ppl_before", "heldout_ppl", "unigram_ppl"} <= set(metrics)
        assert all(0 < metrics[k] < float("inf") for k in ("heldout_ppl_before", "heldout_ppl"))
    saved = AutoTokenizer.from_pretrained(out / "base" / "model")
    assert saved.eos_token == "<|endoftext|>" and saved.eos_token_id == 50256 and saved.pad_token_id == 50257
    assert runs["world_refused"] == [], "something tried the network with local copies of every model"

    run = runs["real"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert "base: complete, skipped" in run.stdout + run.stderr and "data: running" not in run.stdout + run.stderr
    real_run = folder / "artifacts" / "gpt2-real"  # the track's own folder, one per stage
    stages = {stage: json.loads((real_run / stage / "metrics.json").read_text()) for stage in REAL_STAGES}
    for stage, keys in REAL_METRIC_KEYS.items():
        assert keys <= set(stages[stage]), f"{stage}: missing {sorted(keys - set(stages[stage]))}"
    real = stages["eval"]
    assert set(real["gold_rm_winrate_vs_sft"]) == set(real["gold_rm_winrate_vs_sft_ci"]) == {"sft", "ppo", "ppo_ptx"}
    sft = stages["sft"]
    assert sft["data_counts"]["sft"]["rows"] == 40 and sft["data_counts"]["rm_train"]["rows"] == 60  # read
    assert sft["n_sft_records"] == 30 and sft["n_proxy_comparisons"] > 0 and sft["n_gold_comparisons"] > 0
    gold_rm = json.loads((real_run / "rm" / "gold" / "model" / "config.json").read_text())
    assert gold_rm["n_embd"] == 48 and gold_rm["vocab_size"] == 50258  # from GPT-L, with GPT-2's tokens and PAD
    assert (out / "notebooks" / "08_real_data.ipynb").exists()
    assert "judged by the gold reward model" in (real_run / "report.md").read_text()
    assert refused(folder) == [], "the real-data track tried the network with local files"


def no_network_no_copy(job) -> dict[str, object]:
    """Background job: the `gpt2` profile as a new user offline would start it, and what it tried to reach."""
    return {"run": main_job_offline(job, "--profile", "gpt2", timeout=600), "refused": refused(job.folder)}


@pytest.mark.background(job=no_network_no_copy, seconds=15)
def test_without_network_or_local_copy_the_profile_stops_at_its_first_step(background_result):
    """As a new user would meet it offline: the project's own message, naming the model and the field to set, and
    no later step started."""
    run = background_result["run"]
    assert run.returncode == 1
    error = run.stderr[run.stderr.index("error: "):]
    assert error.startswith("error: step base (00_base_model.ipynb) stopped. HubUnavailable: This profile needs the "
                            "model 'gpt2'")
    assert "--set base.hub_model=<path>" in error and "Traceback" not in error
    assert "data: running" not in run.stdout + run.stderr
    assert background_result["refused"], "the refusal was never reached: the test did not test the offline path"
