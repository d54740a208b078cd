"""SFT throughput: our loop (rlhf_lib.sft) vs TRL's SFTTrainer, in tokens per second.

One step = forward, cross-entropy on the response tokens only (prompt and padding masked), backward, clip the
gradient norm to 1, AdamW step. Both systems start from the same GPT-2 weights and train on exactly the same batches:
our `sft.batches` (examples of similar length batched together) fixes the batches, TRL receives the same
prompt/completion pairs in that order with a sequential sampler, and we check that TRL's tokenisation gives the same
input ids and labels as `sft.encode_example`. Throughput = real (non-padding) tokens of the timed steps / seconds,
after `--warmup` untimed steps. Peak memory: CUDA max allocated, or the process's peak RSS on CPU.

    python benchmarks/bench_sft.py --tiny            # 2-layer GPT-2 on the CPU, about a minute
    python benchmarks/bench_sft.py                   # GPT-2 124M, on CUDA when available (bf16 autocast, TF32)
"""

from __future__ import annotations

import copy
import random
import tempfile

import torch
from common import (StepTimes, args_dict, autocast, finish_args, gpt2_config, model_summary, now, parser,
                    report, run_in_turns, system_figures, token_windows, tokenizer_and_ids)
from datasets import Dataset
from transformers import GPT2LMHeadModel
from trl import SFTConfig, SFTTrainer  # imported before any memory is measured

from rlhf_lib.sft import batches, encode_example, sft_loss
from rlhf_lib.training import adamw, check_finite, optimizer_step

GRAD_CLIP, BETAS = 1.0, (0.9, 0.95)  # rlhf_lib.training.adamw's betas; TRL gets the same


def make_pairs(tokenizer, ids, n, max_len, seed):
    """n (prompt, response) pairs cut from the corpus, 1/4 to 1 of `max_len` tokens long with the EOS.

    A prompt ends with a newline (our task format). A pair is kept only if tokenising prompt + response as one text
    (TRL's way) gives the same ids as tokenising them apart (ours): both systems must train on the same tokens.
    """
    gen = torch.Generator().manual_seed(seed)
    pairs = []
    while len(pairs) < n:
        total = int(torch.randint(max_len // 4, max_len, (1,), generator=gen))  # prompt + response + EOS
        n_prompt = int(torch.randint(total // 4, total // 2 + 1, (1,), generator=gen))
        prompt, response = token_windows(ids, [n_prompt, total - n_prompt - 2], tokenizer, gen)
        prompt = prompt + "\n"
        apart = tokenizer(prompt, add_special_tokens=False)["input_ids"] + \
            tokenizer(response, add_special_tokens=False)["input_ids"]
        if tokenizer(prompt + response, add_special_tokens=False)["input_ids"] == apart and len(apart) < max_len:
            pairs.append((prompt, response))
    return pairs


def run_ours(model, train_batches, args):
    """train_sft's inner step (constant learning rate), timed after the warm-up steps. Returns seconds, settings."""
    optimizer = adamw(model, args.lr, weight_decay=0.0, betas=BETAS)
    model.train()
    losses = []
    for i, batch in enumerate(train_batches):
        if i == args.warmup:
            t0 = now(args.device)
        with autocast(args.device):
            loss = sft_loss(model, {k: v.to(args.device) for k, v in batch.items()})
        optimizer_step(model, optimizer, loss, GRAD_CLIP)
        losses.append(loss.detach())  # read once at the end, as train_sft reads once per epoch
    seconds = now(args.device) - t0
    check_finite(torch.stack(losses).sum(), "SFT loss", "lower --lr")
    return seconds, {"optim": "torch.optim.AdamW (rlhf_lib.training.adamw)", "loss_type": "sft_loss"}


def run_trl(model, tokenizer, pairs_in_order, examples_in_order, args):
    """TRL's SFTTrainer on the same pairs, in the same order and batches. Returns seconds of the timed steps and the
    settings TRL chose itself."""
    dataset = Dataset.from_dict({"prompt": [p for p, _ in pairs_in_order],
                                 "completion": [r for _, r in pairs_in_order]})
    cuda = args.device.type == "cuda"
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench_sft_"), completion_only_loss=True, max_length=args.max_len,
        per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
        max_steps=args.warmup + args.steps, learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, adam_beta1=BETAS[0], adam_beta2=BETAS[1], max_grad_norm=GRAD_CLIP,
        train_sampling_strategy="sequential",  # our batches, in our order
        bf16=cuda, use_cpu=not cuda,  # TRL's default bf16=True would run bf16 autocast on the CPU too
        logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, seed=args.seed)
    timer = StepTimes(args.device)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[timer])
    prepared = trainer.train_dataset  # TRL's tokenisation must give our input ids and labels, in our order
    assert [list(x) for x in prepared["input_ids"]] == [ids for ids, _ in examples_in_order], "other tokens"
    assert [list(x) for x in prepared["labels"]] == [lab for _, lab in examples_in_order], "other labels"
    trainer.train()
    assert len(timer.times) == args.warmup + args.steps
    settings = {"optim": getattr(config.optim, "value", str(config.optim)), "loss_type": config.loss_type}
    return timer.times[-1] - timer.times[args.warmup - 1], settings


def main():
    p = parser(__doc__)
    p.add_argument("--max-len", type=int, default=None, help="longest prompt + response + EOS in tokens")
    p.add_argument("--lr", type=float, default=1e-5)
    args = finish_args(p.parse_args(), tiny=dict(batch_size=8, steps=120, warmup=5, max_len=128),
                       full=dict(batch_size=16, steps=30, warmup=5, max_len=512))
    assert args.warmup >= 1, "TRL's steps are timed from the end of the last warm-up step"
    tokenizer, ids = tokenizer_and_ids(args.tiny)
    torch.manual_seed(args.seed)
    initial = GPT2LMHeadModel(gpt2_config(tokenizer, args.tiny))  # each system trains a copy

    # the same batches for both: ours as tensors, TRL as the same pairs in the same order
    n = args.batch_size * (args.warmup + args.steps)
    pairs = make_pairs(tokenizer, ids, n, args.max_len, args.seed)
    examples = [encode_example(tokenizer, prompt, response, args.max_len) for prompt, response in pairs]
    train_batches = batches(examples, args.batch_size, tokenizer.pad_token_id, random.Random(args.seed))
    index = {tuple(x): i for i, (x, _) in enumerate(examples)}
    order = [index[tuple(row[mask.bool()].tolist())] for b in train_batches
             for row, mask in zip(b["input_ids"], b["attention_mask"])]
    timed = train_batches[args.warmup:]
    tokens = int(sum(b["attention_mask"].sum() for b in timed))

    def run(system):
        model = copy.deepcopy(initial).to(args.device)
        return run_ours(model, train_batches, args) if system == "ours" else \
            run_trl(model, tokenizer, [pairs[i] for i in order], [examples[i] for i in order], args)

    results = {system: system_figures(turns, ("tokens", tokens), ("steps", args.steps))
               for system, turns in run_in_turns(run, args.device, args.turns).items()}

    notes = [
        "Same initial weights, same batches (ours: rlhf_lib.sft.batches; TRL: the same pairs in that order with "
        "train_sampling_strategy='sequential'), same input ids and labels (asserted), same lr (constant), AdamW betas, "
        "weight decay 0, gradient clipping 1.0, max length; tokens = real (non-padding) tokens of the timed steps.",
        "Ours: rlhf_lib.sft.sft_loss + rlhf_lib.training.adamw/optimizer_step, the inner step of train_sft without its "
        "cosine schedule and logging; batches are collated before the loop, as train_sft does once per epoch.",
        "TRL: SFTTrainer with its defaults otherwise: loss_type='chunked_nll' (unembedding only on completion tokens, "
        "in checkpointed chunks), its per-step entropy/accuracy metrics, transformers' default AdamW implementation "
        "(trl.optim below); its collator pads each batch to its longest example, like ours.",
        "CUDA: ours runs forward and loss under torch.autocast(bf16), TRL with bf16=True (accelerate's autocast), TF32 "
        "on for both. CPU: both fp32 (TRL's default bf16=True is turned off there).",
        "Memory on CPU is the peak RSS of the whole process (Python, libraries, data), reset before each system.",
    ]
    config = args_dict(args) | {"model": model_summary(initial), "examples": n,
                                "tokens_per_timed_step": tokens / args.steps}
    report("sft", "tokens/s", args, config, results["ours"], results["trl"], notes)


if __name__ == "__main__":
    main()
