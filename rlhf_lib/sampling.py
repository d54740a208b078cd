"""Sampling responses from a policy for a batch of prompts (notebooks 02 to 06).

Decoder-only models continue text on the right, so prompts are padded on the left; `generate` builds the position
ids from the attention mask, so a padded prompt gets the same positions as an unpadded one. The response is cut at
the first EOS: everything after it is padding.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_prompt_tokens: int
                   ) -> dict[str, torch.Tensor]:
    """Left-padded prompt batch; prompts longer than `max_prompt_tokens` keep their last tokens (the request)."""
    ids = [p[-max_prompt_tokens:] for p in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    width = max(len(p) for p in ids)
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, p in enumerate(ids):
        if p:
            input_ids[i, width - len(p):] = torch.tensor(p)
            attention_mask[i, width - len(p):] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def response_mask(response_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for response tokens up to and including the first EOS, 0 after it. (B, T) -> (B, T)."""
    is_eos = (response_ids == eos_id).long()
    after_eos = (is_eos.cumsum(dim=1) - is_eos) > 0  # strictly after the first EOS
    return (~after_eos).long()


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_new_tokens: int,
             temperature: float = 1.0, top_k: int = 0, batch_size: int = 64, seed: int = 0,
             max_prompt_tokens: int | None = None) -> list[str]:
    """Sample one response per prompt; returns the response texts (without EOS, cut at the first one)."""
    model.eval()
    device = next(model.parameters()).device
    limit = max_prompt_tokens or (model.config.n_positions - max_new_tokens)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    # batch prompts of similar length: left padding to a long few-shot prompt makes every step of a batch slower
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    out: list[str] = [""] * len(prompts)
    for s in range(0, len(order), batch_size):
        idx = order[s: s + batch_size]
        enc = {k: v.to(device) for k, v in encode_prompts(tokenizer, [prompts[i] for i in idx], limit).items()}
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        kwargs = {"do_sample": True, "temperature": temperature, "top_k": top_k} if temperature > 0 else \
            {"do_sample": False}
        seqs = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id, **kwargs)
        resp = seqs[:, enc["input_ids"].shape[1]:]
        mask = response_mask(resp, tokenizer.eos_token_id)
        for i, row, m in zip(idx, resp, mask):
            ids = [t for t, keep in zip(row.tolist(), m.tolist()) if keep and t != tokenizer.eos_token_id
                   and t != tokenizer.pad_token_id]
            out[i] = tokenizer.decode(ids)
    return out
