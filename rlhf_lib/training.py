"""Small pieces every training loop here shares: the learning-rate schedule, AdamW groups, resumable checkpoints.

Kept apart from the losses so that each loop (pretraining, SFT, the reward model, PPO) reads like its paper section.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from rlhf_lib.artifacts import atomic_path


def cosine_lr(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """1) linear warm-up to `lr`, 2) cosine decay to `min_lr` at `total_steps` (nanoGPT's schedule)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.95)
          ) -> torch.optim.AdamW:
    """AdamW that decays matrices only (not biases or LayerNorm gains), as in GPT-2 and nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                             lr=lr, betas=betas)


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   grad_clip: float) -> float:
    """Backpropagate `loss`, clip the global gradient norm, step. Returns the norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return float(norm)


def save_checkpoint(path: Path, **state: Any) -> None:
    """Write a resumable checkpoint atomically (a kill during the write leaves the previous one intact)."""
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """The checkpoint's state dict, or None when there is none."""
    path = Path(path)
    return torch.load(path, map_location=device, weights_only=False) if path.exists() else None


def check_finite(loss: torch.Tensor, what: str, advice: str) -> None:
    """Stop with a clear message instead of training on NaN."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what} became {loss.item()}; {advice}")
