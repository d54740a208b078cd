import math
import socket
from dataclasses import replace

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
    hist = bm.pretrain(straight, ids, ids, cfg.base, tmp_path / "a", progress=False)
    assert hist["finished"] and hist["eval_loss"][-1] < hist["eval_loss"][0]
    scores = bm.evaluate_base(straight, ids, ids, cfg.base.block_size)
    assert scores["heldout_ppl"] < scores["unigram_ppl"]
    assert not list((tmp_path / "a").glob("checkpoint-*.pt"))  # removed once finished

    # Killed after 15 steps: the checkpoint from step 10 survives; a fresh process resumes from it.
    killed = bm.new_model(cfg.base, tokenizer, seed=0)
    part = bm.pretrain(killed, ids, ids, cfg.base, tmp_path / "b", stop_after=15, progress=False)
    assert not part["finished"] and len(list((tmp_path / "b").glob("checkpoint-*.pt"))) == 1
    resumed = bm.new_model(cfg.base, tokenizer, seed=0)
    rest = bm.pretrain(resumed, ids, ids, cfg.base, tmp_path / "b", progress=False)
    assert rest["finished"] and rest["step"] == hist["step"]
    assert rest["train_loss"] == pytest.approx(hist["train_loss"])
    for p, q in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q)
    # A checkpoint killed on another corpus is not resumed: the run starts over on its own data.
    other_ids = ids.flip(0)
    cut = bm.pretrain(bm.new_model(cfg.base, tokenizer, seed=0), other_ids, other_ids, cfg.base, tmp_path / "c",
                      stop_after=15, progress=False)
    assert len(list((tmp_path / "c").glob("checkpoint-*.pt"))) == 1
    afresh = bm.pretrain(bm.new_model(cfg.base, tokenizer, seed=0), ids, ids, cfg.base, tmp_path / "c",
                         progress=False)
    assert afresh["train_loss"] == pytest.approx(hist["train_loss"]) and cut["train_loss"][0] != afresh["train_loss"][0]


def test_nan_loss_stops_with_advice(tokenizer, tmp_path):
    cfg = tiny_cfg(max_steps=5, lr=float("inf"), warmup_steps=1)
    model = bm.new_model(cfg.base, tokenizer, seed=0)
    with pytest.raises(FloatingPointError, match="lower base.lr"):
        bm.pretrain(model, bm.encode_documents(tokenizer, TEXTS), bm.encode_documents(tokenizer, TEXTS), cfg.base,
                    tmp_path, progress=False)


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


@pytest.mark.slow
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


def test_shipped_weights_replace_pretraining_only_for_the_same_config_and_corpus(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(bm, "SHIPPED_DIR", tmp_path / "pretrained")
    cfg = tiny_cfg(max_steps=12, lr=1e-2)
    ids = bm.encode_documents(tokenizer, TEXTS)
    trained = bm.new_model(cfg.base, tokenizer, seed=0)
    hist = bm.pretrain(trained, ids, ids, cfg.base, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="finished"):
        bm.ship_pretrained(trained, {**hist, "finished": False}, cfg.base, ids)
    path = bm.ship_pretrained(trained, hist, cfg.base, ids)
    assert (path / "model.safetensors").exists() and path.parent == tmp_path / "pretrained"

    # Same config and corpus: the shipped weights (fp16) and history come back, and nothing trains.
    loaded = bm.new_model(cfg.base, tokenizer, seed=1)
    again = bm.pretrain(loaded, ids, ids, cfg.base, tmp_path / "run2", progress=False)
    assert again["shipped"] == str(path) and again["train_loss"] == hist["train_loss"]
    assert not (tmp_path / "run2").exists()
    for (name, p), q in zip(trained.named_parameters(), loaded.parameters()):
        torch.testing.assert_close(p, q, atol=1e-3, rtol=1e-3, msg=name)
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()  # still tied
    x = ids[:16][None]
    torch.testing.assert_close(loaded(x).logits, trained(x).logits, atol=2e-2, rtol=1e-2)

    # A setting that does not change the weights keeps the match; one that does, another corpus, or opting out train.
    assert bm.shipped_path(tiny_cfg(max_steps=12, lr=1e-2, eval_every=3).base, len(tokenizer)) == path
    assert bm.shipped_path(tiny_cfg(max_steps=13, lr=1e-2).base, len(tokenizer)) != path
    assert bm.shipped_path(replace(cfg.base, seed=1), len(tokenizer)) != path
    other = bm.pretrain(bm.new_model(cfg.base, tokenizer, seed=0), ids.flip(0), ids, cfg.base, tmp_path / "r3",
                        progress=False)
    opted_out = bm.pretrain(bm.new_model(cfg.base, tokenizer, seed=0), ids, ids,
                            tiny_cfg(max_steps=12, lr=1e-2, shipped_weights=False).base, tmp_path / "r4",
                            progress=False)
    assert "shipped" not in other and "shipped" not in opted_out
    assert opted_out["train_loss"] == pytest.approx(hist["train_loss"])


def test_the_ship_stage_pretrains_both_base_models_and_later_builds_load_them(tmp_path, monkeypatch, capsys):
    from rlhf_lib import train
    from rlhf_lib.baselines import load_large_base

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setattr(bm, "SHIPPED_DIR", tmp_path / "pretrained")
    overrides = {"base.max_steps": 6, "base.eval_every": 3, "world.corpus_chars": 40_000, "eval.large_n_layer": 2,
                 "eval.large_n_embd": 48, "eval.large_n_head": 2}
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    assert train.main(["ship", "--profile", "smoke", *sets]) == 0
    assert len(list((tmp_path / "pretrained").glob("*/model.safetensors"))) == 2

    cfg = get_profile("smoke", overrides)
    capsys.readouterr()
    metrics = bm.build_base(cfg, progress=False)  # the shipped weights, not a new run
    assert metrics["shipped_weights"] and metrics["tokens_seen"] == 6 * cfg.base.batch_size * cfg.base.block_size
    assert not list((tmp_path / "artifacts" / "smoke" / "base").glob("checkpoint-*.pt"))
    large, _ = load_large_base(cfg, progress=False)
    assert large.config.n_layer == 2 and large.config.n_embd == 48
    assert capsys.readouterr().out.count("Loaded the pretrained weights that ship in") == 2


def test_the_default_profile_finds_its_shipped_weights():
    """The repository's pretrained weights fit the default profile as it is: a change to the world, the corpus, the
    tokenizer or the pretraining config must ship new ones (`python -m rlhf_lib.train ship --profile default`), or
    every default run would quietly pretrain for an hour first."""
    import json

    cfg = get_profile("default")
    tokenizer = bm.get_tokenizer(cfg)
    corpus = bm.fingerprint(bm.corpus_ids(cfg.world, tokenizer, "train"))
    for base_cfg in (cfg.base, bm.large_config(cfg)):
        path = bm.shipped_path(base_cfg, len(tokenizer))
        assert (path / "model.safetensors").exists(), f"no shipped weights for {base_cfg}: run the ship stage"
        record = json.loads((path / "pretraining.json").read_text())
        assert record["corpus"] == corpus and record["history"]["finished"]
        assert record["history"]["step"][-1] == base_cfg.max_steps
