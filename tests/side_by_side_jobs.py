"""Jobs for tests/test_speed.py's `side_by_side` tests: children are spawned, so a job must live in a module."""

import os
import time
from pathlib import Path

import torch


def square(ticks, x: int, n_ticks: int) -> tuple[int, int, int]:
    for _ in range(n_ticks):
        ticks.put(1)
    return x * x, torch.get_num_threads(), os.getpid()


def fail(ticks, message: str) -> None:
    raise ValueError(message)


def sleep_or_fail(ticks, what: str, pid_file: str) -> None:
    """"sleep": note the process id, then sleep two minutes; "fail": once the sleeper has started, raise."""
    if what == "sleep":
        Path(pid_file).write_text(str(os.getpid()))
        time.sleep(120)
        return
    for _ in range(600):
        if Path(pid_file).exists():
            break
        time.sleep(0.1)
    raise ValueError("runaway KL")


def threads_and_pid(x: int) -> tuple[int, int, int]:
    """For `Beside`: the job's result, its thread count and its process."""
    return x * x, torch.get_num_threads(), os.getpid()
