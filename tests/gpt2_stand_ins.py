"""Run by tests/test_gpt2_rehearsal.py: `python tests/gpt2_stand_ins.py TOKENIZER_DIR OUT_DIR` writes hub-layout
stand-ins for GPT-2 (OUT_DIR/gpt2) and GPT-L (OUT_DIR/gpt2-medium).

Each is a random GPT-2 with GPT-2's vocabulary, context and special tokens, narrow and two layers deep, saved with
`save_pretrained` beside GPT-2's tokenizer (no PAD, as the hub ships it). A script, not a function of the test: the
test's job runs in a thread beside other tests, and seeding torch there would move their random numbers."""

import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel


def stand_in(folder: Path, tokenizer_dir: Path, n_embd: int, seed: int) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=n_embd, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    tokenizer_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    stand_in(out / "gpt2", tokenizer_dir, n_embd=32, seed=0)
    stand_in(out / "gpt2-medium", tokenizer_dir, n_embd=48, seed=1)
