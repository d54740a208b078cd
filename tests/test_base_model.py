import math
import socket

import pytest
import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import get_profile
from rlhf_lib.tokenizer import train_tokenizer

TEXTS = [f"{name} lives in {town} and keeps a {pet}." for name in ("Mira", "Tom", "Ada", "Lin")
         for town in ("Oakridge", "Fenwick", "Brume") for pet in ("fox", "heron", "newt")] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


def tiny_cfg(**base):
    return get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 16,
                                 "base.batch_size": 4, "base.warmup_steps": 2, "base.eval_every": 5,
                                 "base.eval_batches": 1, **{f"base.{k}": v for k, v in base.items()}})


def test_encode_documents_ends_each_with_eos(tokenizer):
    ids = bm.encode_documents(tokenizer, ["Mira lives", "Tom"])
    assert (ids == tokenizer.eos_token_id).sum() == 2 and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids) == "Mira lives<|endoftext|>Tom<|endoftext|>"


def test_lr_schedule_warms_up_then_decays_to_min():
    from rlhf_lib.training import cosine_lr

    assert cosine_lr(0, 100, 10, 1.0, 0.1) == pytest.approx(0.1) and cosine_lr(9, 100, 10, 1.0, 0.1) == 1.0
    assert cosine_lr(10, 100, 10, 1.0, 0.1) == pytest.approx(1.0) and cosine_lr(100, 100, 10, 1.0, 0.1) == 0.1
    assert cosine_lr(55, 100, 10, 1.0, 0.1) == pytest.approx(0.55)


def test_unigram_perplexity_of_uniform_stream_is_vocab_size():
    ids = torch.arange(10).repeat(100)
    assert bm.unigram_perplexity(ids, ids, 10) == pytest.approx(10.0)


def test_batch_targets_are_inputs_shifted_by_one():
    ids = torch.arange(100)
    x, y = bm.get_batch(ids, 8, 3, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (3, 8) and torch.equal(y, x + 1)
    hx, hy = bm.heldout_windows(ids, 8)
    assert hx.shape == (12, 8) and torch.equal(hy, hx + 1)


def test_pretraining_beats_unigram_and_resumes_exactly(tokenizer, tmp_path):
    cfg = tiny_cfg(max_steps=30, checkpoint_every=10, lr=1e-2)
    ids = bm.encode_documents(tokenizer, TEXTS)

    straight = bm.new_model(cfg.base, tokenizer, seed=0)
    hist = bm.pretrain(straight, ids, ids, cfg.base, tmp_path / "a", seed=0, progress=False)
    assert hist["finished"] and hist["eval_loss"][-1] < hist["eval_loss"][0]
    scores = bm.evaluate_base(straight, ids, ids, cfg.base.block_size)
    assert scores["heldout_ppl"] < scores["unigram_ppl"]
    assert not list((tmp_path / "a").glob("checkpoint-*.pt"))  # removed once finished

    # Killed after 15 steps: the checkpoint from step 10 survives; a fresh process resumes from it.
    killed = bm.new_model(cfg.base, tokenizer, seed=0)
    part = bm.pretrain(killed, ids, ids, cfg.base, tmp_path / "b", seed=0, stop_after=15, progress=False)
    assert not part["finished"] and len(list((tmp_path / "b").glob("checkpoint-*.pt"))) == 1
    resumed = bm.new_model(cfg.base, tokenizer, seed=0)
    rest = bm.pretrain(resumed, ids, ids, cfg.base, tmp_path / "b", seed=0, progress=False)
    assert rest["finished"] and rest["step"] == hist["step"]
    assert rest["train_loss"] == pytest.approx(hist["train_loss"])
    for p, q in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q)
    # A checkpoint killed on another corpus is not resumed: the run starts over on its own data.
    other_ids = ids.flip(0)
    cut = bm.pretrain(bm.new_model(cfg.base, tokenizer, seed=0), other_ids, other_ids, cfg.base, tmp_path / "c",
                      seed=0, stop_after=15, progress=False)
    assert len(list((tmp_path / "c").glob("checkpoint-*.pt"))) == 1
    afresh = bm.pretrain(bm.new_model(cfg.base, tokenizer, seed=0), ids, ids, cfg.base, tmp_path / "c", seed=0,
                         progress=False)
    assert afresh["train_loss"] == pytest.approx(hist["train_loss"]) and cut["train_loss"][0] != afresh["train_loss"][0]


def test_nan_loss_stops_with_advice(tokenizer, tmp_path):
    cfg = tiny_cfg(max_steps=5, lr=float("inf"), warmup_steps=1)
    model = bm.new_model(cfg.base, tokenizer, seed=0)
    with pytest.raises(FloatingPointError, match="lower base.lr"):
        bm.pretrain(model, bm.encode_documents(tokenizer, TEXTS), bm.encode_documents(tokenizer, TEXTS), cfg.base,
                    tmp_path, seed=0, progress=False)


def test_save_and_load_round_trip(tokenizer, tmp_path):
    cfg = tiny_cfg()
    model = bm.new_model(cfg.base, tokenizer, seed=1)
    path = bm.save_base(model, tokenizer, tmp_path / "model")
    assert (path / "model.safetensors").exists()
    again, tok = bm.load_pretrained(path, "cpu")
    assert tok.pad_token_id == tokenizer.pad_token_id != tok.eos_token_id
    assert again.config.pad_token_id == tokenizer.pad_token_id
    x = torch.tensor([tokenizer("Mira lives in Oakridge")["input_ids"]])
    torch.testing.assert_close(model(input_ids=x).logits, again(input_ids=x).logits)


def test_sample_returns_one_continuation_per_prompt(tokenizer):
    model = bm.new_model(tiny_cfg().base, tokenizer, seed=0)
    out = bm.sample(model, tokenizer, ["Mira lives", "Tom"], max_new_tokens=5, seed=0)
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
    assert out == bm.sample(model, tokenizer, ["Mira lives", "Tom"], max_new_tokens=5, seed=0)


def test_build_and_load_base_offline_without_network(tmp_path, monkeypatch):
    """The smoke profile builds its base model end to end and never opens a connection off this machine."""
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")) \
                and sock.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    cfg = get_profile("smoke", {"base.max_steps": 60, "base.eval_every": 30, "world.corpus_chars": 60_000})
    metrics = bm.build_base(cfg, progress=False)
    assert metrics["heldout_ppl"] < metrics["unigram_ppl"] and math.isfinite(metrics["heldout_ppl"])
    assert metrics["train_seconds"] > 0 and metrics["n_params"] > 0
    model, tok = bm.load_base(cfg)  # now found on disk, not rebuilt
    assert tok.pad_token_id != tok.eos_token_id and model.config.vocab_size == len(tok)
