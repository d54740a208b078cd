"""GPT-2's real tokenizer, rebuilt offline from `gpt2.tiktoken` (openai-whisper's sdist on PyPI), through the
project's own encodings: PAD beside `<|endoftext|>`, SFT examples, left-truncated prompts, reward-model reads.

The file is converted once per session; the tests skip only when it can be neither found nor downloaded.
"""

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from rlhf_lib import gpt2_tokenizer as g2
from rlhf_lib.base_model import load_pretrained
from rlhf_lib.reward_model import Comparison, RewardModel, encode_comparisons, last_token_index, score_comparisons
from rlhf_lib.sampling import encode_prompts, generate
from rlhf_lib.sft import IGNORE, collate, encode_example, sft_loss
from rlhf_lib.tokenizer import PAD, ensure_pad_token

CONTEXT = 1024  # GPT-2's n_positions


@pytest.fixture(scope="session")
def tiktoken_file() -> Path:
    """GPT-2's file: installed, cached in ~/.cache/rlhf_lib, or downloaded there once (about 8 s)."""
    try:
        return g2.find_gpt2_tiktoken()
    except g2.TiktokenUnavailable as err:
        pytest.skip(f"GPT-2's gpt2.tiktoken is not installed, cached or downloadable here: {err}")


@pytest.fixture(scope="session")
def ranks(tiktoken_file) -> dict[bytes, int]:
    return g2.read_ranks(tiktoken_file)


@pytest.fixture(scope="session")
def gpt2_dir(tiktoken_file, tmp_path_factory) -> Path:
    return g2.gpt2_tokenizer_from_tiktoken(tiktoken_file, tmp_path_factory.mktemp("gpt2") / "tokenizer")


@pytest.fixture
def tok(gpt2_dir):
    """A fresh copy per test: `ensure_pad_token` changes the tokenizer it is given."""
    return AutoTokenizer.from_pretrained(gpt2_dir)


@pytest.fixture
def padded(tok):
    """GPT-2's tokenizer with the project's PAD, as `get_tokenizer` makes it."""
    return ensure_pad_token(tok)


def tiny_gpt2(vocab_size: int, seed: int = 0) -> GPT2LMHeadModel:
    """A random GPT-2 of GPT-2's vocabulary and context, one narrow layer: the shapes matter here, not the weights."""
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_positions=CONTEXT, n_embd=32, n_layer=1, n_head=2)
    return GPT2LMHeadModel(config).eval()


def varied_texts(n_random: int = 300) -> list[str]:
    """Hand-picked hard cases and seeded random mixes of scripts, numbers, punctuation and whitespace runs."""
    fixed = ["", "Hello world", " Hello world", "I'm, you're, we've, they'll, she'd, it's: OK?", "DON'T 'S 'll",
             "  two  spaces\n\nand\ta tab \n", "trailing spaces   ", "\r\n windows\r\n", "a\u00a0b\u2003c",
             "1234567890 3.14159 -42 1e-9 ١٢٣", "def f(x):\n    return x ** 2  # square\n", "<html><b>x</b></html>",
             "naïve café Zürich façade", "Ελληνικά Русский עברית العربية हिन्दी", "中文字符和日本語のかな 한국어",
             "emoji 😀👍🏽👨‍👩‍👧 ❤️", "http://example.com/a?b=c&d=e#f", "!!!???...,,,;;;", "$%^&*()_+{}|:\"<>",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", " " * 20 + "x", "\n" * 5, "ſtraße ǅ ﬁ ½ ²"]
    pieces = ["the", " the", "The", " quick", "brown", " fox", "'s", "'ll", "'re", "’", " ", "  ", "\n", "\t", "\n\n",
              "0", "12", " 345", ".", ",", "!?", "--", "(", ")", "é", "ñ", "ü", "ß", "Ж", "λ", "ש", "ع", "ह", "中",
              "日本", "😀", "👍🏽", "\u00a0", "—", "“", "”", "…", "€", "©", "x", "Z", "_", "#", "@", "\\", "/"]
    rng = random.Random(0)
    mixes = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))) for _ in range(n_random)]
    return fixed + mixes


# ---------------------------------------------------------------------------------------------------------------
# The conversion


def test_vocabulary_and_known_ids(tok, gpt2_dir):
    assert len(tok) == 50257 and tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 50256
    assert tok.pad_token is None  # as on the hub: the project adds its own
    assert tok("Hello world")["input_ids"] == [15496, 995]
    assert tok(" Hello world")["input_ids"] == [18435, 995]
    assert tok(" the")["input_ids"] == [262]
    assert tok("<|endoftext|>")["input_ids"] == [50256]
    assert tok.model_max_length == CONTEXT
    merges = (gpt2_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert len(merges) == 1 + 50000 and merges[1] == "Ġ t"  # GPT-2's merges.txt: a header, then "Ġ t" first


def test_reference_bpe_gives_gpt2_ids(ranks):
    """The ground truth itself is GPT-2's: the same known ids straight from the ranks."""
    assert g2.reference_encode("Hello world", ranks) == [15496, 995]
    assert g2.reference_encode(" the", ranks) == [262]


def test_encodes_like_bpe_over_the_ranks(tok, ranks):
    texts = varied_texts()
    assert len(texts) > 300
    assert g2.mismatches(tok, ranks, texts) == []


def test_a_missing_merge_is_caught(ranks):
    """The check has teeth: without the merge that makes " the", texts with " the" encode differently."""
    merges = [m for m in g2.recover_merges(ranks) if m != (b" t", b"he")]
    assert len(merges) == 50000 - 1
    broken = g2.build_tokenizer(ranks, merges)
    assert g2.mismatches(broken, ranks, ["Hello world", "over the hill"]) == ["over the hill"]


def test_missing_file_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(g2, "_installed_whisper", lambda: None)
    (tmp_path / "gpt2.tiktoken").write_text("IQ== 0\n")  # a damaged cache is not GPT-2's file
    with pytest.raises(g2.TiktokenUnavailable, match="gpt2.tiktoken"):
        g2.find_gpt2_tiktoken(cache=tmp_path, download=False)

    def no_pip(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(g2.subprocess, "run", no_pip)
    with pytest.raises(g2.TiktokenUnavailable, match="pip download openai-whisper==20250625 --no-deps"):
        g2.find_gpt2_tiktoken(cache=tmp_path)


def test_wrong_file_is_refused(tmp_path):
    bad = tmp_path / "gpt2.tiktoken"
    bad.write_text("IQ== 0\n")
    with pytest.raises(ValueError, match="ranks"):
        g2.gpt2_tokenizer_from_tiktoken(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------------
# PAD and EOS


def test_pad_added_distinct_from_eos_and_embeddings_grow_by_the_mean(tok):
    model = tiny_gpt2(50257)
    old = model.get_input_embeddings().weight.detach().clone()
    ensure_pad_token(tok, model)
    assert tok.pad_token == PAD and tok.pad_token_id == 50257 and len(tok) == 50258
    assert tok.eos_token_id == 50256 and tok("<|endoftext|>")["input_ids"] == [50256]
    assert tok(PAD)["input_ids"] == [50257]
    emb = model.get_input_embeddings().weight
    assert emb.shape == (50258, 32) and model.config.vocab_size == 50258 and model.config.pad_token_id == 50257
    assert torch.equal(emb[:50257], old)
    assert torch.equal(emb[50257], old.mean(dim=0))  # exactly: transformers' default lands within 1e-6 of it
    assert model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # still tied: PAD's logit row too
    batch = tok(["Hi", "Hi there you"], padding=True)
    assert batch["input_ids"][0][-1] == 50257 and batch["attention_mask"][0][-1] == 0
    ensure_pad_token(tok, model)  # a second call changes nothing
    assert len(tok) == 50258 and model.get_input_embeddings().weight.shape[0] == 50258


def test_hub_layout_copy_loads_with_pad(tok, tmp_path):
    """A local copy of hub GPT-2 (the `gpt2` profile's `base.hub_model=<folder>`): `load_pretrained` adds the PAD."""
    model = tiny_gpt2(50257)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load_pretrained(tmp_path, "cpu")
    assert loaded_tok.pad_token_id == 50257 and loaded_tok.eos_token_id == 50256
    emb = loaded.get_input_embeddings().weight
    assert emb.shape[0] == 50258 and loaded.config.pad_token_id == 50257
    assert torch.equal(emb[50257], emb[:50257].mean(dim=0))


# ---------------------------------------------------------------------------------------------------------------
# The project's encodings with GPT-2's tokenizer


def test_sft_example_ends_with_eos_and_loss_masks_the_prompt(padded):
    prompt, response = "Q: Where do herons live?\nA:", " Herons live near water."
    ids, labels = encode_example(padded, prompt, response, CONTEXT)
    p, r = padded(prompt)["input_ids"], padded(response)["input_ids"]
    assert ids == p + r + [50256] and labels == [IGNORE] * len(p) + r + [50256]

    model = tiny_gpt2(len(padded))
    batch = collate([(ids, labels), encode_example(padded, "Hi", " there", CONTEXT)], padded.pad_token_id)
    assert batch["input_ids"][1, -1] == padded.pad_token_id and batch["labels"][1, -1] == IGNORE
    with torch.no_grad():
        loss = sft_loss(model, batch)
        logp = F.log_softmax(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, -1)
    p2, r2 = padded("Hi")["input_ids"], padded(" there")["input_ids"]
    targets = [(0, t, y) for t, y in enumerate(r + [50256], start=len(p))] + \
              [(1, t, y) for t, y in enumerate(r2 + [50256], start=len(p2))]
    expected = -torch.stack([logp[b, t - 1, y] for b, t, y in targets]).mean()  # response and EOS only
    torch.testing.assert_close(loss, expected)


def test_long_prompt_truncated_on_the_left_within_gpt2_context(padded):
    request = "\nQuestion: what is the capital of France?\nAnswer:"
    prompt = "Some long context about the weather. " * 200 + request
    full = padded(prompt)["input_ids"]
    assert len(full) > CONTEXT
    new_tokens = 16
    budget = CONTEXT - new_tokens
    enc = encode_prompts(padded, [prompt, "Short one:"], budget)
    assert enc["input_ids"].shape == (2, budget)
    assert enc["input_ids"][0].tolist() == full[-budget:]  # the left end goes; the request stays
    assert padded.decode(enc["input_ids"][0]).endswith(request)
    short = padded("Short one:")["input_ids"]
    assert enc["input_ids"][1, -len(short):].tolist() == short
    assert set(enc["input_ids"][1, :-len(short)].tolist()) == {padded.pad_token_id}  # PAD, never EOS, on the left
    assert enc["attention_mask"][1].sum() == len(short)

    model = tiny_gpt2(len(padded))  # n_positions 1024: a prompt one token longer than its budget would fail here
    out = generate(model, padded, [prompt], max_new_tokens=new_tokens, temperature=0.0)
    assert isinstance(out[0], str)

    response = " Paris is the capital of France."
    ids, labels = encode_example(padded, prompt, response, CONTEXT)
    r = padded(response)["input_ids"] + [50256]
    assert len(ids) == CONTEXT and ids[-len(r):] == r and labels[-len(r):] == r  # the response is kept whole
    assert ids[:-len(r)] == full[-(CONTEXT - len(r)):]


def test_reward_model_reads_the_last_real_token_with_either_padding(padded):
    batch = [Comparison("Q: Name a fox's food.\nA:", [" Berries.", " Foxes eat berries, mice and fish."], [0, 1])]
    enc = encode_comparisons(padded, batch, CONTEXT)  # right-padded
    ids, mask = enc["input_ids"], enc["attention_mask"]
    last = last_token_index(mask)
    assert ids[torch.arange(2), last].tolist() == [50256, 50256]  # the score is read at EOS...
    assert ids[0, last[0] + 1:].tolist() == [padded.pad_token_id] * (ids.shape[1] - 1 - int(last[0]))  # ...not PAD

    rm = RewardModel.from_lm(tiny_gpt2(len(padded))).eval()
    with torch.no_grad():
        alone = torch.stack([rm(ids[i: i + 1, : int(last[i]) + 1], mask[i: i + 1, : int(last[i]) + 1])[0]
                             for i in range(2)])
        right = score_comparisons(rm, enc)[0]
        shift = [ids.shape[1] - int(n) for n in mask.sum(1)]
        left_ids = torch.stack([row.roll(s) for row, s in zip(ids, shift)])
        left_mask = torch.stack([row.roll(s) for row, s in zip(mask, shift)])
        assert left_mask[0, 0] == 0 and left_mask[0, -1] == 1 and left_ids[0, -1] == 50256
        left = rm(left_ids, left_mask)
        at_last_column = rm.token_scores(ids, mask)[0, -1]
    torch.testing.assert_close(right, alone)
    torch.testing.assert_close(left, alone, rtol=1e-4, atol=1e-5)
    assert not torch.isclose(at_last_column, alone[0])  # reading the padded row's end would be a different score
