"""Where runs write their outputs, and how they write them without ever leaving half a file.

Layout: `artifacts/<profile>/<step>/` with one `metrics.json` per step, written last, so a step whose metrics exist
is complete. `$RLHF_ARTIFACTS` moves the root (tests use a temporary folder).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def artifacts_root() -> Path:
    """`$RLHF_ARTIFACTS`, else `artifacts/` in the repository (editable install), else `./artifacts`."""
    if os.environ.get("RLHF_ARTIFACTS"):
        return Path(os.environ["RLHF_ARTIFACTS"]).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").exists() and (REPO_ROOT / "notebooks").is_dir():
        return REPO_ROOT / "artifacts"
    return Path.cwd() / "artifacts"


def step_dir(profile: str, step: str, create: bool = True) -> Path:
    """`artifacts/<profile>/<step>/`."""
    path = artifacts_root() / profile / step
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def real_run_name(run: str) -> str:
    """The real-data track's folder beside a run's: `artifacts/<run>-real/`, with one folder per stage as in the world
    track (sft, rm, ppo, eval), so `rm/metrics.json` means the reward model's figures in both. The base model stays
    in `<run>/base/`: notebook 00 trains one for both tracks."""
    return f"{run}-real"


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it onto `target` (file or folder), else delete it.

    A reader sees the old version or the new one, never a half-written one, even if the process is killed. In a
    data-parallel run (`rlhf_lib.training`) only the first process renames, and every process waits until it has.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    rank = _distributed_rank()
    try:
        yield tmp
        if rank > 0:
            pass  # the other processes hold the same content; the first one publishes it
        elif tmp.is_dir() and target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)  # folders cannot be replaced in one step: swap, then clean up
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
        if rank >= 0:
            import torch.distributed as dist

            dist.barrier()


def _distributed_rank() -> int:
    """This process's rank when torch.distributed is running, else -1."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else -1


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader can parse the file."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(_finite(obj), indent=2, sort_keys=True) + "\n")


def write_metrics(profile: str, step: str, metrics: dict[str, Any]) -> Path:
    """Write `artifacts/<profile>/<step>/metrics.json` atomically; its presence marks the step complete."""
    path = step_dir(profile, step) / "metrics.json"
    write_json_atomic(path, metrics)
    return path


def read_metrics(profile: str, step: str) -> dict[str, Any] | None:
    """The step's metrics, or None when the step has not completed."""
    path = step_dir(profile, step, create=False) / "metrics.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and rerun the step.") from err


def save_atomic(target: Path, save: Callable[[Path], None]) -> Path:
    """Run `save(tmp)` (e.g. `model.save_pretrained`) into a temporary folder, then move it onto `target`."""
    with atomic_path(target) as tmp:
        tmp.mkdir()
        save(tmp)
    return target


def save_figure(fig: Any, profile: str, step: str, name: str) -> Path:
    """Save a matplotlib figure as `artifacts/<profile>/<step>/figures/<name>.png` (the report links it)."""
    path = step_dir(profile, step) / "figures" / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path
