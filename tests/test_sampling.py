import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import get_profile
from rlhf_lib.sampling import encode_prompts, generate, response_mask
from rlhf_lib.tokenizer import train_tokenizer


def test_response_mask_keeps_up_to_the_first_eos():
    ids = torch.tensor([[5, 6, 0, 7, 0], [5, 5, 5, 5, 5], [0, 1, 1, 1, 1]])
    assert response_mask(ids, eos_id=0).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_prompts_are_left_padded_and_truncated_on_the_left():
    tok = train_tokenizer(["Mira lives in Oakridge.", "Tom"] * 20, vocab_size=300)
    enc = encode_prompts(tok, ["Tom", "Mira lives in Oakridge."], max_prompt_tokens=100)
    assert enc["input_ids"][0, 0] == tok.pad_token_id and enc["attention_mask"][0, 0] == 0
    assert enc["attention_mask"][0, -1] == 1 and enc["attention_mask"][1].all()
    short = encode_prompts(tok, ["Mira lives in Oakridge."], max_prompt_tokens=2)
    assert tok.decode(short["input_ids"][0]) == tok.decode(tok("Mira lives in Oakridge.")["input_ids"][-2:])


def test_padding_does_not_change_greedy_answers():
    """A prompt sampled alone and in a left-padded batch gets the same greedy continuation (position ids)."""
    tok = train_tokenizer(["Mira lives in Oakridge.", "Tom keeps a fox."] * 20, vocab_size=300)
    cfg = get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2})
    model = bm.new_model(cfg.base, tok, seed=0)
    alone = generate(model, tok, ["Tom"], max_new_tokens=8, temperature=0)
    batched = generate(model, tok, ["Tom", "Mira lives in Oakridge. Tom keeps"], max_new_tokens=8, temperature=0)
    assert alone[0] == batched[0]
    assert "<|endoftext|>" not in "".join(batched) and "<|pad|>" not in "".join(batched)
