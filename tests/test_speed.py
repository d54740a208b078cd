"""The GPU speed-ups leave the CPU path exactly as it was, and the profile switches them."""

import contextlib
import os
import time

import pytest
import torch

from rlhf_lib import speed
from rlhf_lib.config import SpeedConfig, get_profile
from rlhf_lib.training import adamw


def tiny() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 1))


def test_on_the_cpu_every_speed_up_is_off():
    model = tiny()
    assert isinstance(speed.autocast("cpu"), contextlib.nullcontext) and speed.fused("cpu") == {}
    with speed.autocast("cpu"):
        assert model(torch.randn(2, 4)).dtype == torch.float32
    assert speed.maybe_compile(model, SpeedConfig(compile=True)) is model
    frozen = speed.frozen(tiny())
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in frozen.parameters()) and not frozen.training
    assert speed.frozen(None) is None
    assert speed.frozen(torch.nn.Identity()) is not None  # a scorer without parameters (toy rewards)


def test_adamw_keeps_decay_groups_and_trains():
    model = tiny()
    opt = adamw(model, 1e-2, 0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    before = torch.nn.functional.mse_loss(model(x), y).item()
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    assert torch.nn.functional.mse_loss(model(x), y).item() < before


def test_profiles_carry_a_speed_config_that_overrides_switch():
    assert get_profile("gpt2").speed == SpeedConfig()
    cfg = get_profile("smoke", {"speed.compile": True, "speed.bf16": False})
    assert cfg.speed.compile and not cfg.speed.bf16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_cuda_autocast_is_bf16_and_frozen_models_hold_bf16():
    model = tiny().cuda()
    with speed.autocast("cuda"):
        assert model[0](torch.randn(2, 4, device="cuda")).dtype == torch.bfloat16
    assert next(speed.frozen(tiny().cuda()).parameters()).dtype == torch.bfloat16
    assert speed.fused("cuda") == {"fused": True}


def test_length_pieces_cover_every_row_once_within_the_budget():
    lengths = [5, 40, 7, 12, 300, 9, 33, 8]
    pieces = speed.length_pieces(lengths, 64)
    flat = [i for p in pieces for i in p]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # rows of similar length pass together
    for p in pieces:
        assert len(p) == 1 or len(p) * max(lengths[i] for i in p) <= 64, p
    assert [300] in [[lengths[i] for i in p] for p in pieces]  # longer than the budget: alone
    assert speed.length_pieces(lengths, None) == [list(range(len(lengths)))]
    assert speed.length_pieces([], 64) == []


def test_pass_budget_is_for_the_cpu_only():
    cfg = SpeedConfig(cpu_pass_tokens=512)
    assert speed.pass_tokens("cpu", cfg) == 512 and speed.pass_tokens("cuda", cfg) is None


def test_side_by_side_runs_each_job_in_its_own_process_with_a_share_of_the_threads():
    from side_by_side_jobs import square

    out = speed.side_by_side(square, {"a": (3, 2), "b": (4, 5)}, workers=2, total_ticks=7, desc="test",
                             progress=False)
    assert {k: v[0] for k, v in out.items()} == {"a": 9, "b": 16}
    assert {v[1] for v in out.values()} == {max(1, torch.get_num_threads() // 2)}
    assert os.getpid() not in {v[2] for v in out.values()}


def test_side_by_side_raises_a_jobs_error_with_its_message():
    from side_by_side_jobs import fail

    with pytest.raises(ValueError, match="ppo.lr is too high"):
        speed.side_by_side(fail, {"a": ("ppo.lr is too high",)}, workers=2, total_ticks=1, desc="test",
                           progress=False)


def test_side_by_side_stops_the_other_jobs_when_one_fails(tmp_path):
    from side_by_side_jobs import sleep_or_fail

    pid_file = str(tmp_path / "pid")
    start = time.time()
    with pytest.raises(ValueError, match="runaway KL"):
        speed.side_by_side(sleep_or_fail, {"a": ("sleep", pid_file), "b": ("fail", pid_file)}, workers=2,
                           total_ticks=1, desc="test", progress=False)
    assert time.time() - start < 60  # the sleeping job (120 s) was stopped, not waited for
    with pytest.raises(ProcessLookupError):
        os.kill(int(open(pid_file).read()), 0)


def test_beside_runs_a_job_in_a_second_process_while_this_one_keeps_half_the_threads(two_threads):
    from side_by_side_jobs import fail, threads_and_pid

    threads = two_threads
    job = speed.Beside(threads_and_pid, (7,), "cpu", SpeedConfig())
    assert torch.get_num_threads() == threads - threads // 2  # this process meanwhile
    value, child_threads, pid = job.result()
    assert (value, child_threads) == (49, threads // 2) and pid != os.getpid()
    assert torch.get_num_threads() == threads  # given back
    with pytest.raises(ValueError, match="rm.lr is too high"):
        speed.Beside(fail, (None, "rm.lr is too high"), "cpu", SpeedConfig()).result()
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("side_by_side, threads", [(1, 2), (2, 1)], ids=["side_by_side=1", "one thread"])
def test_beside_runs_the_job_here_when_nothing_may_run_beside(side_by_side, threads):
    from side_by_side_jobs import threads_and_pid

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        job = speed.Beside(threads_and_pid, (3,), "cpu", SpeedConfig(side_by_side=side_by_side))
        assert job.result() == (9, threads, os.getpid())
    finally:
        torch.set_num_threads(before)
