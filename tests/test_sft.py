import pytest
import torch

from rlhf_lib import base_model as bm, sft
from rlhf_lib.config import get_profile
from rlhf_lib.data import SFTRecord
from rlhf_lib.tokenizer import train_tokenizer
from rlhf_lib.training import fingerprint

PAIRS = [("Q: Where does Mira live?\nA:", " Mira lives in Oakridge."),
         ("Write a note to Tom.\n", "Dear Tom,\nPlease come over.\nBest wishes,\nMira"),
         ("Is the following statement true or false?\n\"Foxes eat fish.\"\n", "False. Foxes eat berries.")]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([p + r for p, r in PAIRS] * 50, vocab_size=300)


@pytest.fixture(scope="module")
def cfg():
    return get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 64,
                                 "sft.batch_size": 2, "sft.lr": 1e-2, "sft.warmup_steps": 1})


def records(n=6):
    return [SFTRecord(f"p{i}", f"u{i}", "open_qa", "plain", p, {}, r) for i, (p, r) in
            zip(range(n), PAIRS * n)]


def test_labels_ignore_the_prompt_and_end_with_eos(tokenizer):
    prompt, response = PAIRS[0]
    ids, labels = sft.encode_example(tokenizer, prompt, response, 64)
    n_prompt = len(tokenizer(prompt)["input_ids"])
    assert labels[:n_prompt] == [sft.IGNORE] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[n_prompt:-1]) == response


def test_too_long_prompt_loses_its_left_end(tokenizer):
    prompt, response = "x " * 100 + "Q: Where does Mira live?\nA:", " Mira lives in Oakridge."
    ids, labels = sft.encode_example(tokenizer, prompt, response, 24)
    assert len(ids) == 24 and tokenizer.decode([t for t in labels if t != sft.IGNORE][:-1]) == response
    assert tokenizer.decode(ids).endswith("A: Mira lives in Oakridge.<|endoftext|>")


def test_padding_is_pad_not_eos_and_never_counts(tokenizer):
    batch = sft.collate([sft.encode_example(tokenizer, p, r, 64) for p, r in PAIRS], tokenizer.pad_token_id)
    pad = batch["attention_mask"] == 0
    assert pad.any() and (batch["input_ids"][pad] == tokenizer.pad_token_id).all()
    assert (batch["labels"][pad] == sft.IGNORE).all()


def test_loss_is_the_mean_over_response_tokens(tokenizer, cfg):
    model = bm.new_model(cfg.base, tokenizer, seed=0)
    batch = sft.collate([sft.encode_example(tokenizer, p, r, 64) for p, r in PAIRS], tokenizer.pad_token_id)
    ours = sft.sft_loss(model, batch)
    hf = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    torch.testing.assert_close(ours, hf)


def test_loss_equals_trl_completion_only_loss(tokenizer, cfg, tmp_path):
    """TRL's SFTTrainer (completion_only_loss) tokenises, masks and pads the same batch: same loss."""
    from datasets import Dataset
    from trl import SFTConfig as TrlSFTConfig, SFTTrainer

    model = bm.new_model(cfg.base, tokenizer, seed=0)
    data = Dataset.from_list([{"prompt": p, "completion": r} for p, r in PAIRS])
    args = TrlSFTConfig(output_dir=str(tmp_path), completion_only_loss=True, report_to=[], max_length=None,
                        use_cpu=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    theirs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    trl_loss = model(input_ids=theirs["input_ids"], attention_mask=theirs["attention_mask"],
                     labels=theirs["labels"]).loss
    ours = sft.collate([sft.encode_example(tokenizer, p, r, 64) for p, r in PAIRS], tokenizer.pad_token_id)
    assert torch.equal(ours["labels"], theirs["labels"])
    torch.testing.assert_close(sft.sft_loss(model, ours), trl_loss)


def test_training_lowers_valid_loss_and_resumes(tokenizer, cfg, tmp_path):
    cfg.sft.epochs = 4
    model = bm.new_model(cfg.base, tokenizer, seed=0)
    calls = []
    hist = sft.train_sft(model, tokenizer, records(), records(3), cfg.sft, tmp_path, seed=0,
                         on_epoch_end=lambda e, m: calls.append(e) or {"gold": float(e)}, progress=False)
    assert hist["valid_loss"][-1] < hist["valid_loss"][0] and calls == [0, 1, 2, 3, 4]
    assert len(hist["epoch_metrics"]) == 5 and not (tmp_path / "checkpoint.pt").exists()


def test_a_killed_run_resumes_only_on_the_same_base_model(tokenizer, cfg, tmp_path, capsys):
    cfg.sft.epochs = 3

    def killed_after_epoch_1(epoch, model):
        if epoch == 2:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        sft.train_sft(bm.new_model(cfg.base, tokenizer, seed=0), tokenizer, records(), records(3), cfg.sft, tmp_path,
                      seed=0, on_epoch_end=killed_after_epoch_1, progress=False)
    assert (tmp_path / "checkpoint.pt").exists()
    other = sft.train_sft(bm.new_model(cfg.base, tokenizer, seed=1), tokenizer, records(), records(3), cfg.sft,
                          tmp_path, seed=0, progress=False)
    assert "Resuming" not in capsys.readouterr().out and other["epoch"] == [0, 1, 2, 3]
    with pytest.raises(KeyboardInterrupt):
        sft.train_sft(bm.new_model(cfg.base, tokenizer, seed=0), tokenizer, records(), records(3), cfg.sft, tmp_path,
                      seed=0, on_epoch_end=killed_after_epoch_1, progress=False)
    sft.train_sft(bm.new_model(cfg.base, tokenizer, seed=0), tokenizer, records(), records(3), cfg.sft, tmp_path,
                  seed=0, progress=False)
    assert "Resuming SFT" in capsys.readouterr().out


def test_nan_loss_stops_with_a_clear_message_before_any_checkpoint(tokenizer, cfg, tmp_path, monkeypatch):
    cfg.sft.epochs = 2
    model = bm.new_model(cfg.base, tokenizer, seed=0)
    monkeypatch.setattr(sft, "sft_loss", lambda m, batch: m(input_ids=batch["input_ids"]).logits.sum() * float("nan"))
    with pytest.raises(FloatingPointError, match="lower sft.lr"):
        sft.train_sft(model, tokenizer, records(), records(3), cfg.sft, tmp_path, seed=0, progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_lora_trains_adapters_only(tokenizer, cfg):
    model = sft.with_lora(bm.new_model(cfg.base, tokenizer, seed=0), r=4, alpha=8)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    merged = model.merge_and_unload()
    assert not any("lora_" in n for n, _ in merged.named_parameters())


def test_lora_adapters_start_from_the_seed_alone(tokenizer, cfg):
    def adapters(seed, noise):
        torch.manual_seed(noise)  # whatever ran before
        model = sft.with_lora(bm.new_model(cfg.base, tokenizer, seed=0), r=4, alpha=8, seed=seed)
        return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n}

    a, b, c = adapters(1, 123), adapters(1, 456), adapters(2, 123)
    assert all(torch.equal(a[n], b[n]) for n in a) and not all(torch.equal(a[n], c[n]) for n in a)
    assert fingerprint(*a.values()) == fingerprint(*b.values())  # so a killed LoRA run finds its checkpoint
