"""Small pieces every training loop here shares: the learning-rate schedule, AdamW groups, resumable checkpoints,
and data parallelism over processes.

Kept apart from the losses so that each loop (pretraining, SFT, the reward model, PPO) reads like its paper section.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import torch

from rlhf_lib.artifacts import atomic_path
from rlhf_lib.config import SpeedConfig
from rlhf_lib.speed import adam


def cosine_lr(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """1) linear warm-up to `lr`, 2) cosine decay to `min_lr` at `total_steps` (nanoGPT's schedule)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.95),
          speed: SpeedConfig = SpeedConfig()) -> torch.optim.Optimizer:
    """AdamW that decays matrices only (not biases or LayerNorm gains), as in GPT-2 and nanoGPT; fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    return adam([{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                 {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                params[0].device, speed, decoupled=True, lr=lr, betas=betas)


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   grad_clip: float) -> torch.Tensor:
    """Backpropagate `loss`, average the gradients over processes (data parallel), clip the global gradient norm,
    step. Returns the norm before clipping (a tensor: reading it would wait for the GPU)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(model)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return norm


def save_checkpoint(path: Path, **state: Any) -> None:
    """Write a resumable checkpoint atomically (a kill during the write leaves the previous one intact)."""
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, device: torch.device | str = "cpu", **expected: Any) -> dict[str, Any] | None:
    """The checkpoint's state dict; None when there is none, or when it belongs to another run: every `expected`
    entry (config, seed, the inputs' `fingerprint`) must equal what the checkpoint stored under that name."""
    path = Path(path)
    state = torch.load(path, map_location=device, weights_only=False) if path.exists() else None
    if state is None or any(state.get(k) != v for k, v in expected.items()):
        return None
    return state


def fingerprint(*inputs: Any) -> str:
    """A hash of what a training run starts from (weights, data): a checkpoint resumes only a run whose inputs are the
    same, never one that a changed reward model, SFT model or dataset has made stale."""
    h = hashlib.blake2b(digest_size=8)
    for item in inputs:
        if isinstance(item, torch.nn.Module):
            tensors = list(item.state_dict().values())
        elif isinstance(item, torch.Tensor):
            tensors = [item]
        else:  # plain data (ids, token lists, a seed): its repr
            h.update(repr(item).encode())
            continue
        for t in tensors:
            h.update(t.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_finite(loss: torch.Tensor, what: str, advice: str) -> None:
    """Stop with a clear message instead of training on NaN."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what} became {loss.item()}; {advice}")


def read_losses(losses: list[torch.Tensor], what: str, advice: str) -> list[float]:
    """Losses kept on the device, read in one go (a GPU waits once, not once per step); stops on NaN like
    `check_finite`."""
    values = torch.stack(losses).float()
    check_finite(values.sum(), what, advice)
    return values.tolist()


# ---------------------------------------------------------------------------------------------------------------
# Data parallelism. `accelerate launch --multi_gpu --num_processes N <script>` starts N copies of the same program;
# accelerate sets up the process group (NCCL on GPUs, gloo on CPUs). Each copy trains on its own rows of every batch
# (`my_rows`) and the gradients are averaged before every step, as CleanRL's multi-GPU PPO does, so all copies
# keep identical weights and the library calls stay the same. In one process both are no-ops.


def process_info() -> tuple[int, int]:
    """(rank, number of processes): (0, 1) unless started by a launcher (`WORLD_SIZE` > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # sets up torch.distributed (gloo on CPUs), once
    return state.process_index, state.num_processes


def my_rows(n: int) -> slice:
    """The rows of an n-row batch this process trains on (all of them when there are fewer rows than processes)."""
    rank, size = process_info()
    return slice(rank, n, size) if n >= size else slice(0, n)


def average_gradients(model: torch.nn.Module) -> None:
    """All-reduce the mean of every gradient over processes, in one flat buffer."""
    if process_info()[1] == 1:
        return
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()
