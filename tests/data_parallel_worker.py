"""Run by tests/test_data_parallel.py under `accelerate launch --num_processes 2 --cpu`: a few steps of SFT, reward
model and PPO through the library's own loops; each process writes its weights' fingerprint and first losses."""

import copy
import hashlib
import json
import sys
from pathlib import Path

import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import PPOConfig, RMConfig, SFTConfig, get_profile
from rlhf_lib.data import PromptRecord, SFTRecord
from rlhf_lib.ppo_trainer import train_ppo
from rlhf_lib.reward_model import Comparison, RewardModel, train_rm
from rlhf_lib.sft import train_sft
from rlhf_lib.tokenizer import train_tokenizer
from rlhf_lib.training import process_info

out = Path(sys.argv[1])
rank, n_proc = process_info()
torch.set_num_threads(1)
texts = ["Q: Where does Mira live?\nA: Mira lives in Oakridge.", "Tell me about the fox. The fox eats berries.",
         "Please be kind. Ben has a pet goat."] * 30
tok = train_tokenizer(texts, vocab_size=300)
cfg = get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 64}).base
prompts = ["Q: Where does Mira live?\nA:", "Tell me about the fox.", "Please", "Q: Who has a pet goat?\nA:"]


def fingerprint(model: torch.nn.Module) -> str:
    return hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()


report = {"rank": rank, "n_proc": n_proc}
sft_recs = [SFTRecord(f"s{i}", "u", "open_qa", "plain", prompts[i % 4], {}, f" Answer number {i}.") for i in range(16)]
policy = bm.new_model(cfg, tok, seed=0)
report["init"] = fingerprint(policy)
h = train_sft(policy, tok, sft_recs, sft_recs[:4], SFTConfig(epochs=1, batch_size=8, max_len=64, warmup_steps=1),
              out / f"sft{rank}", seed=0, progress=False)
report |= {"sft": fingerprint(policy), "sft_first_loss": h["train_loss"][0]}

rm = RewardModel.from_lm(bm.new_model(cfg, tok, seed=1))
comps = [Comparison(prompts[i % 4], [f" good {i}.", f" bad {i}", " so so."], [1, 3, 2]) for i in range(8)]
h = train_rm(rm, tok, comps, {}, RMConfig(batch_size=4, max_len=64, warmup_steps=1), seed=0, progress=False)
report |= {"rm": fingerprint(rm), "rm_first_loss": h["loss"][0]}

records = [PromptRecord(f"p{i}", "u", "open_qa", "plain", prompts[i % 4], {}) for i in range(8)]
value, reward = RewardModel.from_lm(bm.new_model(cfg, tok, seed=3)), RewardModel.from_lm(bm.new_model(cfg, tok, seed=4))
ppo_cfg = PPOConfig(steps=2, batch_size=8, minibatch_size=4, ppo_epochs=2, max_new_tokens=6, lr=1e-3, value_lr=1e-3)
h = train_ppo(policy, copy.deepcopy(policy).eval(), value, reward, tok, records, ppo_cfg, seed=0, progress=False)
report |= {"ppo_policy": fingerprint(policy), "ppo_value": fingerprint(value), "ppo_ema": fingerprint(h["ema"]),
           "ppo_first_rm_score": h["rm_score"][0]}
(out / f"rank{rank}.json").write_text(json.dumps(report))
