import pytest
from transformers import AutoTokenizer

from rlhf_lib.tokenizer import EOS, PAD, ensure_pad_token, train_tokenizer

TEXTS = ["Mira Holt lives in Oakridge with her marsh fox.", "Q: What do herons eat?\nA: Herons eat fish.",
         "The copper kettle was made in Eldervale and costs 12 coins."] * 200


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=400)


@pytest.mark.parametrize("text", ["Mira Holt lives in Oakridge.", "  two  spaces\nand a newline\t tab",
                                  "unseen words: zyx qwv ünïcödé 😀 日本", ""])
def test_round_trip_any_string(tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_pad_is_distinct_from_eos(tokenizer):
    assert tokenizer.eos_token == EOS and tokenizer.pad_token == PAD
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.bos_token_id == tokenizer.eos_token_id


def test_merges_learnt_from_corpus(tokenizer):
    assert len(tokenizer) > 256 + 2
    assert len(tokenizer("Oakridge")["input_ids"]) <= 2  # a frequent word becomes one or two tokens


def test_padding_uses_pad(tokenizer):
    batch = tokenizer(["Mira", "Mira Holt lives in Oakridge"], padding=True)
    short = batch["input_ids"][0]
    assert short[-1] == tokenizer.pad_token_id and batch["attention_mask"][0][-1] == 0


def test_save_and_reload(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.pad_token_id == tokenizer.pad_token_id and again.eos_token_id == tokenizer.eos_token_id
    assert again(TEXTS[1])["input_ids"] == tokenizer(TEXTS[1])["input_ids"]


def test_ensure_pad_token_gives_gpt2_style_tokenizer_a_new_pad():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS], show_progress=False))
    gpt2_like = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS)  # like GPT-2: no PAD at all
    gpt2_like.pad_token = gpt2_like.eos_token  # the common shortcut this project avoids
    n = len(gpt2_like)
    ensure_pad_token(gpt2_like)
    assert gpt2_like.pad_token == PAD and gpt2_like.pad_token_id == n and len(gpt2_like) == n + 1
    assert gpt2_like.pad_token_id != gpt2_like.eos_token_id
