"""What the three benchmarks share: flags, the GPT-2 and its tokenizer, precision, timing, memory, the JSON record.

Each benchmark runs our implementation and TRL's counterpart in one process, in turns (ours, TRL, TRL, ours with
`--turns 2`), each turn on fresh copies of the same initial weights, and writes
`benchmarks/results/<name>-<device>[-tiny].json`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import importlib.metadata
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from transformers import GPT2Config, PreTrainedTokenizerBase, TrainerCallback

from rlhf_lib.artifacts import write_json_atomic
from rlhf_lib.base_model import corpus_for, resolve_device
from rlhf_lib.config import WorldConfig
from rlhf_lib.tokenizer import train_tokenizer

RESULTS = Path(__file__).resolve().parent / "results"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # we import trl.experimental knowingly


def parser(doc: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes; None means "the benchmark's default for --tiny or for GPT-2 124M"."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="a 2-layer, 128-wide GPT-2 with small batches (CPU, ~1 min)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when available")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per batch")
    p.add_argument("--steps", type=int, default=None, help="timed steps, after the warm-up")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--turns", type=int, default=2,
                   help="timed runs per system, taken in turns ours-TRL-TRL-ours...: a machine that speeds up or "
                        "slows down during the benchmark weighs on both alike")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/<name>-...json)")
    return p


def finish_args(args: argparse.Namespace, tiny: dict[str, Any], full: dict[str, Any]) -> argparse.Namespace:
    """Fill the flags left at None from the tiny or the full defaults; set threads and seed."""
    for k, v in (tiny if args.tiny else full).items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = resolve_device(args.device)
    if args.device.type == "cuda":  # TF32 matmuls for both systems (fp32 parts of bf16 autocast)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    return args


# ---------------------------------------------------------------------------------------------------------------
# The model, its tokenizer and text


def corpus_texts(n_chars: int) -> list[str]:
    """Documents of the generated world (rlhf_lib.world): text for the tokenizer, prompts and demonstrations."""
    return [d.text for d in corpus_for(WorldConfig(corpus_chars=n_chars)).train_documents()]


def tokenizer_and_ids(tiny: bool) -> tuple[PreTrainedTokenizerBase, torch.Tensor]:
    """Our byte-level BPE (EOS id 0, PAD id 1) trained on the corpus, and the corpus as one token stream (N,).

    Documents are joined by newlines, not EOS: the world's documents are short, and windows cut from the stream
    (prompts, demonstrations) must hold no EOS.
    """
    texts = corpus_texts(100_000 if tiny else 400_000)
    tokenizer = train_tokenizer(texts, vocab_size=512 if tiny else 4096)
    return tokenizer, torch.tensor(tokenizer("\n".join(texts), add_special_tokens=False)["input_ids"])


def gpt2_config(tokenizer: PreTrainedTokenizerBase, tiny: bool) -> GPT2Config:
    """GPT-2 124M (GPT2Config's defaults: 12 layers, 768 wide, 12 heads, 50,257 tokens) or a 2-layer, 128-wide one.

    The full model keeps GPT-2's vocabulary size, so that the unembedding costs what it costs in GPT-2, although our
    offline tokenizer has fewer tokens (sampled ids beyond it decode to nothing; both systems see the same ids).
    """
    size = dict(n_layer=2, n_embd=128, n_head=4, n_positions=256, vocab_size=len(tokenizer)) if tiny \
        else dict(vocab_size=max(50257, len(tokenizer)))
    return GPT2Config(**size, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)


def token_windows(ids: torch.Tensor, lengths: list[int], tokenizer: PreTrainedTokenizerBase,
                  gen: torch.Generator) -> list[str]:
    """Texts decoded from random corpus windows of the given token lengths, kept only where re-encoding the text gives
    back exactly the same ids (so a text of n tokens is n tokens for every system)."""
    out: list[str] = []
    for n in lengths:
        while True:
            s = int(torch.randint(0, len(ids) - n, (1,), generator=gen))
            window = ids[s: s + n].tolist()
            text = tokenizer.decode(window)
            if tokenizer.eos_token_id not in window and \
                    tokenizer(text, add_special_tokens=False)["input_ids"] == window:
                out.append(text)
                break
    return out


def model_summary(model: torch.nn.Module) -> dict[str, Any]:
    c = model.config
    return {"class": type(model).__name__, "n_layer": c.n_layer, "n_embd": c.n_embd, "n_head": c.n_head,
            "vocab_size": c.vocab_size, "n_positions": c.n_positions, "activation": c.activation_function,
            "dropout": c.resid_pdrop, "n_params": sum(p.numel() for p in model.parameters())}


def args_dict(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v) for k, v in vars(args).items()}


# ---------------------------------------------------------------------------------------------------------------
# Precision, time and memory, the same for both systems


def autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA (TF32 is switched on by `finish_args`), plain fp32 on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def now(device: torch.device) -> float:
    """Wall-clock seconds after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class StepTimes(TrainerCallback):
    """Records the time at the end of every step of a transformers/TRL trainer, and the metrics it logs."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times, self.logs = device, [], []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(now(self.device))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs or {}))


def reset_memory(device: torch.device) -> dict[str, Any]:
    """Start a fresh peak-memory measurement; returns what `peak_memory_mib` will measure and the memory now."""
    return {"memory_kind": _reset_peak(device), "memory_at_start_mib": memory_now_mib(device)}


def _reset_peak(device: torch.device) -> str:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return "CUDA max memory allocated (torch.cuda.max_memory_allocated)"
    with contextlib.suppress(OSError, AttributeError):  # glibc: give freed heap back, so it is not counted again
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:  # Linux: "5" resets the process's peak RSS, so each system gets its own peak
        Path("/proc/self/clear_refs").write_text("5")
        return "process peak RSS (resource.getrusage ru_maxrss), reset before this system via /proc/self/clear_refs"
    except OSError:
        return "process peak RSS (resource.getrusage ru_maxrss) since the process started (could not be reset)"


def run_in_turns(run: Callable[[str], tuple[float, dict[str, Any]]], device: torch.device, turns: int
                 ) -> dict[str, dict[str, Any]]:
    """Call `run("ours")` and `run("trl")` `turns` times each, in the order ours, TRL, TRL, ours, ours, TRL...
    (a drift in the machine's speed then costs both alike). `run` returns (timed seconds, the system's settings).
    Per system: the seconds of each turn, its settings, and the peak memory of its first turn."""
    out: dict[str, dict[str, Any]] = {}
    for k in range(2 * turns):
        system = ("ours", "trl")[(k + k // 2) % 2]  # ours, trl, trl, ours, ours, trl, ...
        memory = reset_memory(device)
        seconds, settings = run(system)
        if system not in out:
            out[system] = {"seconds": [], "settings": settings, "memory": {"peak_memory_mib": peak_memory_mib(device),
                                                                         **memory}}
        out[system]["seconds"].append(seconds)
    return out


def system_figures(turns: dict[str, Any], amount: tuple[str, int], steps: tuple[str, int]) -> dict[str, Any]:
    """One system's result, laid out alike in every benchmark: throughput = the amount of all turns / their seconds,
    the seconds of each turn (their spread shows the noise), the amount and timed steps under their names, the peak
    memory, and the system's own settings. `amount` and `steps` are per turn."""
    n, seconds = len(turns["seconds"]), sum(turns["seconds"])
    return {"throughput": amount[1] * n / seconds, "seconds": seconds, "seconds_per_turn": turns["seconds"],
            amount[0]: amount[1] * n, steps[0]: steps[1] * n, **turns["memory"], **turns["settings"]}


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_now_mib(device: torch.device) -> float | None:
    """Memory in use right now (allocated on CUDA, resident on CPU): the baseline a peak starts from."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    with contextlib.suppress(OSError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024
    return None


# ---------------------------------------------------------------------------------------------------------------
# The record


def hardware(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    out: dict[str, Any] = {"cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "platform": platform.platform()}
    if device.type == "cuda":
        out |= {"gpu": torch.cuda.get_device_name(device), "gpu_count": torch.cuda.device_count(),
                "cuda": torch.version.cuda}
    return out


def versions() -> dict[str, str]:
    return {"python": platform.python_version(),
            **{p: importlib.metadata.version(p) for p in ("torch", "transformers", "trl", "accelerate")}}


def report(name: str, unit: str, args: argparse.Namespace, config: dict[str, Any], ours: dict[str, Any],
           trl: dict[str, Any], notes: list[str]) -> Path:
    """Print both systems' figures and the speedup; write the JSON record atomically."""
    speedup = ours["throughput"] / trl["throughput"]
    device = args.device.type
    print(f"\n{name} on {device}{' (tiny)' if args.tiny else ''}: {unit}, peak memory = {ours['memory_kind']}")
    for system, r in (("ours", ours), ("TRL", trl)):
        print(f"  {system:5s} {r['throughput']:12.1f} {unit}   {r['seconds']:7.2f} s   "
              f"peak {r['peak_memory_mib']:8.1f} MiB")
    print(f"  speedup (ours / TRL, above 1: ours is faster): {speedup:.3f}")
    record = {"benchmark": name, "device": device, "tiny": args.tiny, "unit": unit, "speedup": speedup,
              "ours": ours, "trl": trl, "config": config, "notes": notes,
              "command": shlex.join([sys.executable, *sys.argv]), "cwd": os.getcwd(),
              "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hardware": hardware(args.device), "versions": versions()}
    path = args.out or RESULTS / f"{name}-{device}{'-tiny' if args.tiny else ''}.json"
    write_json_atomic(path, record)
    print(f"  wrote {path}")
    return path
