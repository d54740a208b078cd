"""GPU speed-ups for the `gpt2` profile, each one line with its reason; on a CPU every one is off.

The training loops call these helpers and otherwise read as if they ran in fp32 on one device:

* `autocast(device)`: bf16 autocast on CUDA. Matmuls run on the tensor cores in bf16 while the weights, the
  optimizer state and the losses stay fp32 (no loss scaling needed, unlike fp16). It also turns on TF32, so what
  autocast leaves in fp32 still uses the tensor cores.
* `adam(...)`: the fused CUDA kernel updates every parameter in one launch instead of a few per tensor.
* `frozen(model)`: the reference and reward models never train, so they hold bf16 weights and no gradients.
* a static KV cache for PPO's rollouts (`rollout.sample_rollout(static_cache=...)`): preallocated once per batch
  instead of grown by concatenation at every new token.
* `maybe_compile(model, on)`: `torch.compile` fuses the small kernels of a forward/backward pass; off by default
  (a first call compiles for a minute, and generation with a growing KV cache recompiles), on with `speed.compile`.

One speed-up is for the CPU: `length_pieces` runs a minibatch as several forward passes of rows of similar length,
each cut to its own longest row. A CPU is compute-bound, so every padding token it skips is time saved (PPO's
minibatches mix 20-token plain prompts with 250-token few-shot ones); a GPU prefers one large pass.

Another is for a CPU with few cores: `side_by_side` trains independent runs (notebook 04's two PPO runs, notebook
05's three) in separate processes at once, each with its share of the cores. The matrices of these small models are
too small to keep two threads busy. Measured on 2 cores (default profile): two PPO runs side by side take 267 s, one
after the other 2 x 163 s; three side by side 407 s against 3 x 163 s. `speed.side_by_side` sets how many at most;
on a GPU the runs go one after another. `Beside` is the same idea for one job that runs while the notebook goes on
(notebook 03's ablation beside the reward model's training).

`SpeedConfig` (in `rlhf_lib.config`) switches each one; its defaults are right for a GPU and harmless on a CPU.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable

import torch

from rlhf_lib.config import SpeedConfig


def on_cuda(device: torch.device | str) -> bool:
    return torch.device(device).type == "cuda"


def enable_tf32(cfg: SpeedConfig = SpeedConfig()) -> None:
    """TF32 for fp32 matmuls and convolutions (on GPUs since Ampere; ignored elsewhere)."""
    if cfg.tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device | str, cfg: SpeedConfig = SpeedConfig()) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when `cfg.bf16`; a no-op context elsewhere (the CPU path stays fp32)."""
    if on_cuda(device):
        enable_tf32(cfg)
    if cfg.bf16 and on_cuda(device) and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fused(device: torch.device | str, cfg: SpeedConfig = SpeedConfig()) -> dict[str, Any]:
    """Keyword arguments for torch.optim.Adam/AdamW: the fused kernel on CUDA, the default loop elsewhere."""
    return {"fused": True} if cfg.fused_adam and on_cuda(device) else {}


def adam(params: Iterable[torch.nn.Parameter] | list[dict], device: torch.device | str,
         cfg: SpeedConfig = SpeedConfig(), decoupled: bool = False, **kwargs: Any) -> torch.optim.Optimizer:
    """Adam (or AdamW with `decoupled`), fused on CUDA."""
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return cls(params, **kwargs, **fused(device, cfg))


def frozen(model: torch.nn.Module | None, cfg: SpeedConfig = SpeedConfig()) -> torch.nn.Module | None:
    """A model that only scores: no gradients, eval mode, and bf16 weights on CUDA (half the memory and reads)."""
    if model is None:
        return None
    model.requires_grad_(False).eval()
    param = next(model.parameters(), None)
    if cfg.bf16_frozen and param is not None and on_cuda(param.device) and torch.cuda.is_bf16_supported():
        model.to(torch.bfloat16)
    return model


def maybe_compile(model: torch.nn.Module, cfg: SpeedConfig = SpeedConfig()) -> torch.nn.Module:
    """`torch.compile(model)` when `cfg.compile` is on and the model is on CUDA; the model itself otherwise."""
    param = next(model.parameters(), None)
    if cfg.compile and param is not None and on_cuda(param.device):
        return torch.compile(model)
    return model


def pass_tokens(device: torch.device | str, cfg: SpeedConfig = SpeedConfig()) -> int | None:
    """Tokens per forward pass inside a minibatch: `cfg.cpu_pass_tokens` on a CPU, None (one pass) on CUDA."""
    return None if on_cuda(device) else cfg.cpu_pass_tokens


def length_pieces(lengths: list[int], max_tokens: int | None) -> list[list[int]]:
    """Row positions sorted by length, cut into pieces of at most `max_tokens` padded tokens (rows x longest row; a
    longer row is a piece alone). None: one piece, in the original order."""
    if max_tokens is None:
        return [list(range(len(lengths)))]
    pieces: list[list[int]] = [[]]
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if pieces[-1] and (len(pieces[-1]) + 1) * lengths[i] > max_tokens:
            pieces.append([])
        pieces[-1].append(i)
    return pieces if pieces[0] else []


def _worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def side_by_side(job: Callable[..., Any], jobs: dict[str, tuple], workers: int, total_ticks: int, desc: str,
                 progress: bool = True) -> dict[str, Any]:
    """`job(ticks, *args)` for every entry of `jobs`, in `workers` processes at once, each with an equal share of
    this process's threads; returns {name: result}. A job calls `ticks.put(n)` to advance the one progress bar
    (`total_ticks` in all), so that runs side by side show one bar, not several interleaved. A job's error is raised
    here, and it (or an interrupted kernel) stops the other jobs at once rather than after they finish.

    `job` must be importable (a module-level function): children are spawned, not forked, so that none inherits a
    half-initialised thread pool or CUDA context."""
    import multiprocessing as mp
    import time

    from tqdm.auto import tqdm

    ctx = mp.get_context("spawn")
    threads = max(1, torch.get_num_threads() // workers)
    with ctx.Manager() as manager, ctx.Pool(workers, _worker_threads, (threads,)) as pool:  # leaving: terminate
        ticks = manager.Queue()
        results = {name: pool.apply_async(job, (ticks, *args)) for name, args in jobs.items()}
        with tqdm(total=total_ticks, desc=desc, disable=not progress) as bar:
            while True:
                finished = [r for r in results.values() if r.ready()]
                while not ticks.empty():
                    bar.update(ticks.get())
                for r in finished:
                    r.get()  # re-raises the job's exception, message and all
                if len(finished) == len(results):
                    break
                time.sleep(0.5)
        return {name: r.get() for name, r in results.items()}


class Beside:
    """`job(*args)` started in a second process now, its result collected later with `result()`: on a CPU this
    process keeps half the threads and goes on with its own work meanwhile (notebook 03 trains the reward model while
    the ablation's two runs train beside it). Where nothing runs beside (a GPU, `side_by_side=1`, one thread) the job
    runs here when `result()` is called, so a notebook reads the same either way.

    The child is spawned, so `job` must be importable. Dropping the object (re-running the cell) stops the child."""

    def __init__(self, job: Callable[..., Any], args: tuple, device: torch.device | str, cfg: SpeedConfig) -> None:
        import multiprocessing as mp
        import weakref

        self.job, self.args, self.threads = job, args, torch.get_num_threads()
        self.pool = None
        if cfg.side_by_side > 1 and not on_cuda(device) and self.threads > 1:
            self.pool = mp.get_context("spawn").Pool(1, _worker_threads, (self.threads // 2,))
            self.pending = self.pool.apply_async(job, args)
            torch.set_num_threads(self.threads - self.threads // 2)
            weakref.finalize(self, self.pool.terminate)

    def result(self) -> Any:
        """The job's result (its error, if it failed); gives this process its threads back."""
        if self.pool is None:
            return self.job(*self.args)
        try:
            return self.pending.get()
        finally:
            self.pool.terminate()
            torch.set_num_threads(self.threads)
