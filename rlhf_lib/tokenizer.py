"""A byte-level BPE tokenizer (GPT-2's algorithm) trained on the world's corpus (notebook 00).

GPT-2 has one special token, `<|endoftext|>`, and many RLHF codebases reuse it as padding; then "mask the padding"
also masks the real end of every response and the reward model never sees where an answer stops. We keep EOS and
PAD distinct from the start.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedModel, PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on `texts` and wrap it as a transformers tokenizer with EOS (= BOS) and a separate PAD."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's regex split + bytes->unicode map
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS, PAD],  # ids 0 and 1
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any string can be encoded
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return wrap(bpe)


def wrap(bpe: Tokenizer) -> PreTrainedTokenizerFast:
    """A `tokenizers.Tokenizer` as a transformers tokenizer (save_pretrained, padding, batch encoding)."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, unk_token=None, pad_token=PAD,
        padding_side="right", model_max_length=1_000_000,
    )
    return tokenizer


def ensure_pad_token(tokenizer: PreTrainedTokenizerFast, model: PreTrainedModel | None = None
                     ) -> PreTrainedTokenizerFast:
    """Give a hub tokenizer (GPT-2 has no PAD) a PAD token distinct from EOS; `<|endoftext|>` stays the response EOS.

    With `model`, its embeddings grow to the new vocabulary (`fit_embeddings`) and its config learns the PAD id."""
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": PAD})
    if model is not None:
        fit_embeddings(model, len(tokenizer))
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer


def fit_embeddings(model: PreTrainedModel, vocab_size: int) -> None:
    """Grow the model's token embeddings (and its unembedding, tied or not) to `vocab_size` rows, each new row the
    mean of the old ones.

    PAD is masked out everywhere, yet its row still takes part in the softmax over the vocabulary: the mean row gives
    it the average logit, far below the likely tokens', so adding it barely moves the pretrained model's next-token
    distribution (a zero or random row need not). transformers' default draws near the mean from torch's global RNG;
    the exact mean is the same row on every run and leaves later random draws (data order, sampling) unchanged."""
    old = model.get_input_embeddings().num_embeddings
    if old >= vocab_size:
        return
    model.resize_token_embeddings(vocab_size, mean_resizing=False)
    with torch.no_grad():
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):  # GPT-2 ties them: same rows
            if layer is not None:
                layer.weight[old:] = layer.weight[:old].mean(dim=0)
