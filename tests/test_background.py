"""The session's background jobs (conftest.Background): long subprocess tests run beside the others, and what a job
returns or raises reaches its test."""

import signal
import sys
import threading
import time
from pathlib import Path

import pytest

import conftest


@pytest.fixture
def background():
    jobs = conftest.Background()  # its own, beside the session's
    yield jobs
    jobs.stop()


def echo(job: conftest.JobContext) -> tuple[str, str]:
    run = job.run([sys.executable, "-c", "import os; print(os.environ['WHO'])"], env={**job.env, "WHO": "the job"},
                  timeout=60)
    return run.stdout.strip(), job.folder.name


def fails(job: conftest.JobContext) -> None:
    raise ValueError("rm.lr is too high")


def skips(job: conftest.JobContext) -> None:
    pytest.skip("gpt2.tiktoken cannot be had here")


def sleeps(job: conftest.JobContext) -> int:
    return job.run([sys.executable, "-c", "import time; time.sleep(120)"], timeout=300).returncode


def test_a_jobs_result_error_or_skip_reaches_its_test(background):
    background.start([echo, fails, skips])
    assert background.result(echo) == ("the job", "echo")  # its environment and its own folder
    with pytest.raises(ValueError, match="rm.lr is too high"):
        background.result(fails)
    with pytest.raises(pytest.skip.Exception, match="cannot be had"):
        background.result(skips)


def test_a_job_not_started_with_the_session_runs_when_its_test_asks(background):
    assert background.result(echo)[0] == "the job"


def test_a_job_still_waiting_when_its_test_asks_runs_in_the_test_itself(background):
    def where(job: conftest.JobContext) -> str:
        return threading.current_thread().name
    background.start([sleeps, where])  # `where` waits behind the sleeper
    while not background.processes:
        time.sleep(0.05)
    assert background.result(where) == threading.current_thread().name  # this test's thread, not the sleeper's
    assert background.futures[where].cancelled() and not background.futures[sleeps].done()


def test_stopping_kills_a_running_job_and_drops_those_not_started(background):
    background.start([sleeps, echo])
    while not background.processes:  # the sleeper has started
        time.sleep(0.05)
    started = time.monotonic()
    background.stop()
    assert time.monotonic() - started < 30  # not the sleeper's 120 s
    assert background.futures[sleeps].result() == -signal.SIGKILL
    assert background.futures[echo].cancelled()


def test_a_job_reads_the_sessions_environment_not_what_a_test_monkeypatches_meanwhile(background, monkeypatch):
    monkeypatch.setenv("WHO", "a test in the main thread")
    assert background.result(who) is None


def test_a_jobs_artifacts_go_to_its_own_folder_not_the_sessions_smoke_run(background):
    artifacts, folder = background.result(artifacts_and_folder)
    assert artifacts == str(folder) != conftest.SESSION_ENV["RLHF_ARTIFACTS"]


def artifacts_and_folder(job: conftest.JobContext) -> tuple[str, Path]:
    return job.env["RLHF_ARTIFACTS"], job.folder


def who(job: conftest.JobContext) -> str | None:
    return job.env.get("WHO")


def test_tests_with_jobs_run_last_the_longest_jobs_at_the_end_and_the_smoke_runs_readers_after_the_notebooks():
    class Item:
        def __init__(self, nodeid: str, seconds: float | None = None) -> None:
            self.nodeid = nodeid
            self.marker = None if seconds is None else pytest.mark.background(job=echo, seconds=seconds).mark

        def get_closest_marker(self, name: str):
            return self.marker if name == "background" else None

    items = [Item("tests/test_smoke_run.py::test_keys", 90), Item("tests/test_smoke_run.py::test_report"),
             Item("tests/test_a.py::test_rehearsal", 200), Item("notebooks/00_base_model.ipynb::Cell 0"),
             Item("tests/test_a.py::test_unit"), Item("tests/test_b.py::test_seeds", 40)]
    assert [i.nodeid.split("::")[-1] for i in sorted(items, key=conftest.run_order)] == [
        "Cell 0", "test_unit", "test_report", "test_seeds", "test_keys", "test_rehearsal"]
