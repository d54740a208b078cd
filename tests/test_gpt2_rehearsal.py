"""The `gpt2` profile rehearsed end to end without the network (issue 21): the world track, then the real-data track.

A stand-in for the hub's GPT-2 and GPT-L: randomly initialised models of GPT-2's shape where it matters (GPT-2's
real tokenizer with its 50,257 tokens and `<|endoftext|>`, a 1,024-token context), narrow and shallow so that a CPU
runs them, saved with `save_pretrained` like a hub download. The main job then runs the `gpt2` profile on them, step
counts cut down by `--set`, in a subprocess whose every connection to a non-loopback address is refused: the kernels
papermill starts inherit the refusal through PYTHONPATH and still talk to it over loopback. The real-data track
(`data.source="real"`, notebook 08) then runs on the same base model, from small local files in Dolly's and
HH-RLHF's public schemas (`test_real_track.write_real_samples`).

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
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

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


@pytest.fixture(scope="module")
def gpt2_tokenizer_dir(tmp_path_factory) -> Path:
    """GPT-2's real tokenizer folder, rebuilt from `gpt2.tiktoken`."""
    try:
        tiktoken = g2.find_gpt2_tiktoken()
    except g2.TiktokenUnavailable as err:
        pytest.skip(f"GPT-2's tokenizer cannot be obtained here (gpt2.tiktoken not installed, cached or "
                    f"downloadable): {err}")
    return g2.gpt2_tokenizer_from_tiktoken(tiktoken, tmp_path_factory.mktemp("gpt2-tokenizer") / "tokenizer")


def stand_in(folder: Path, tokenizer_dir: Path, n_embd: int, seed: int) -> Path:
    """A hub-layout folder: a random GPT-2 with GPT-2's vocabulary, context and special tokens, narrow and two layers
    deep, saved with `save_pretrained` beside GPT-2's tokenizer (no PAD, as the hub ships it)."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=n_embd, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def offline_env(tmp_path: Path) -> dict[str, str]:
    """The subprocess's environment: artifacts under `tmp_path`, the refusal on PYTHONPATH, no hub-offline flags."""
    guard = tmp_path / "refuse_network"
    guard.mkdir(exist_ok=True)  # a second main job in the same folder (the real-data track) reuses it
    (guard / "sitecustomize.py").write_text(REFUSE_NETWORK)
    env = {k: v for k, v in os.environ.items() if k not in HUB_FREE_ENV}
    path = os.pathsep.join(p for p in (str(guard), env.get("PYTHONPATH")) if p)
    return {**env, "PYTHONPATH": path, "REFUSED_LOG": str(tmp_path / "refused.log"),
            "RLHF_ARTIFACTS": str(tmp_path / "artifacts")}


def main_job_offline(tmp_path: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """`python -m rlhf_lib.pipeline *args` with the network refused."""
    return subprocess.run([sys.executable, "-m", "rlhf_lib.pipeline", *args], cwd=tmp_path, env=offline_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)


def refused(tmp_path: Path) -> list[str]:
    log = tmp_path / "refused.log"
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
    run = subprocess.run([sys.executable, "-c", probe], env=offline_env(tmp_path), capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["refused", "ConnectionRefusedError", "refused", "gaierror"]
    assert len(refused(tmp_path)) == 2


def as_sets(sets: dict[str, object]) -> list[str]:
    """The main job's `--set field=value` arguments, each value as JSON."""
    return [f"--set={key}={json.dumps(value)}" for key, value in sets.items()]


@pytest.mark.slow
def test_the_gpt2_profile_runs_offline_on_local_copies(tmp_path, gpt2_tokenizer_dir):
    """Both tracks. The world's: every step writes its metrics; GPT-2 and GPT-L are pretrained further on the world,
    perplexity before and after recorded. The real data's: SFT, the proxy and gold reward models and both PPO runs
    read the local files and write their stages' metrics in `artifacts/gpt2-real/`. Nothing tried the network."""
    gpt2 = stand_in(tmp_path / "gpt2", gpt2_tokenizer_dir, n_embd=32, seed=0)
    gpt_l = stand_in(tmp_path / "gpt2-medium", gpt2_tokenizer_dir, n_embd=48, seed=1)
    sets = {"base.hub_model": str(gpt2), "eval.large_hub_model": str(gpt_l), "data.real_sft": None,
            "data.real_rm": None, **shrink()}
    run = main_job_offline(tmp_path, "--profile", "gpt2", *as_sets(sets), timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]

    out = tmp_path / "artifacts" / "gpt2"
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
    assert refused(tmp_path) == [], "something tried the network with local copies of every model"

    # The real-data track on the same base model (its step is complete, so skipped) and the same GPT-L
    dolly, hh = write_real_samples(tmp_path / "real-data")
    real_sets = {**sets, "data.source": "real", "data.real_sft": str(dolly), "data.real_rm": str(hh), **SHRINK_REAL}
    run = main_job_offline(tmp_path, "--profile", "gpt2", *as_sets(real_sets), timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert "base: complete, skipped" in run.stdout + run.stderr and "data: running" not in run.stdout + run.stderr
    real_run = tmp_path / "artifacts" / "gpt2-real"  # the track's own folder, one per stage
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
    assert refused(tmp_path) == [], "the real-data track tried the network with local files"


@pytest.mark.slow
def test_without_network_or_local_copy_the_profile_stops_at_its_first_step(tmp_path):
    """As a new user would meet it offline: the project's own message, naming the model and the field to set, and
    no later step started."""
    run = main_job_offline(tmp_path, "--profile", "gpt2", timeout=600)
    assert run.returncode == 1
    error = run.stderr[run.stderr.index("error: "):]
    assert error.startswith("error: step base (00_base_model.ipynb) stopped. HubUnavailable: This profile needs the "
                            "model 'gpt2'")
    assert "--set base.hub_model=<path>" in error and "Traceback" not in error
    assert "data: running" not in run.stdout + run.stderr
    assert refused(tmp_path), "the refusal was never reached: the test did not test the offline path"
