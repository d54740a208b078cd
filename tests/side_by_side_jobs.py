"""Jobs for tests/test_speed.py's `side_by_side` tests: children are spawned, so a job must live in a module."""

import os

import torch


def square(ticks, x: int, n_ticks: int) -> tuple[int, int, int]:
    for _ in range(n_ticks):
        ticks.put(1)
    return x * x, torch.get_num_threads(), os.getpid()


def fail(ticks, message: str) -> None:
    raise ValueError(message)
