"""Test-wide environment, set before anything imports transformers and before nbval starts notebook kernels.

Notebook kernels inherit this process's environment: they run in the smoke profile, offline, and write their
artifacts to a temporary folder instead of the repository's `artifacts/`.
"""

import os
import tempfile

os.environ["RLHF_PROFILE"] = "smoke"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
if "RLHF_ARTIFACTS" not in os.environ:
    os.environ["RLHF_ARTIFACTS"] = _SESSION_ARTIFACTS = tempfile.mkdtemp(prefix="rlhf-test-artifacts-")
else:
    _SESSION_ARTIFACTS = None  # the caller's folder: kept
os.environ.setdefault("MPLBACKEND", "Agg")

import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402  (the environment above comes first)

from rlhf_lib.world import World, build_world  # noqa: E402


@pytest.fixture(scope="session")
def world() -> World:
    """The tests' usual small world (30 people, 8 places, 10 animals, 12 objects, 6 misconceptions), built once.

    Shared by every test module, so tests read it and never change it. A module that needs another size defines its
    own `world` (test_world.py: the default size; test_probes.py and test_nlp_tasks.py: a smaller one)."""
    return build_world(0, n_people=30, n_places=8, n_animals=10, n_objects=12, n_misconceptions=6)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's temporary artifacts (about 100 MB of smoke models) go when the session ends."""
    BACKGROUND.stop()
    if _SESSION_ARTIFACTS is not None:
        shutil.rmtree(_SESSION_ARTIFACTS, ignore_errors=True)


def run_order(item: pytest.Item) -> tuple[float, bool]:
    """`tests/test_smoke_run.py` runs after the other tests: by then nbval has executed every notebook in the smoke
    profile into this session's artifacts folder, and its tests read what they wrote (`smoke_artifacts`). Tests with a
    background job (`Background`) come last of all, the longest jobs' at the very end (their jobs start first)."""
    background = item.get_closest_marker("background")
    return (background.kwargs["seconds"] if background else -1), item.nodeid.startswith("tests/test_smoke_run.py")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    items.sort(key=run_order)


@pytest.fixture
def two_threads() -> Iterator[int]:
    """Two compute threads or more during the test, as on any machine of two cores or more, so that `speed.Beside`
    runs its job in a second process (a session with background jobs gives every process one: `Background`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield torch.get_num_threads()
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def main_job() -> Callable[..., subprocess.CompletedProcess]:
    """`main_job(root, *args)` runs `python -m rlhf_lib.pipeline *args` as a user would, with its artifacts under
    `root`, and returns the finished process (output captured, so a test can read its messages)."""
    def run(root: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rlhf_lib.pipeline", *args], cwd=Path(__file__).parent,
                              env={**os.environ, "RLHF_ARTIFACTS": str(root)}, capture_output=True, text=True,
                              timeout=timeout)
    return run


@pytest.fixture(scope="session")
def smoke_artifacts(main_job: Callable[..., subprocess.CompletedProcess]) -> Path:
    """The artifacts root of this pytest session's smoke run, complete: the notebooks (run by nbval) wrote it; any
    step they did not write (a test file run alone) is run here by the main job, so each notebook runs once."""
    root = Path(os.environ["RLHF_ARTIFACTS"])
    result = main_job(root, "--profile", "smoke")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root


# ------------------------------------------------------------------------------------ long subprocess tests, beside


SESSION_ENV = {**os.environ}
"""The environment as the session starts. Background jobs build theirs from it, not from `os.environ`, which a test
in the main thread may be monkeypatching at that moment."""


@dataclass
class JobContext:
    """What a background job is given: its own empty folder, the session's environment as it started with
    RLHF_ARTIFACTS pointing into that folder (never the session's smoke run), and `run`, a `subprocess.run` whose
    process the session kills if it ends first (a kernel the process started exits with it)."""

    folder: Path
    env: dict[str, str]
    background: "Background"

    def run(self, cmd: list[str], *, timeout: float, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        with self.background.lock:
            if self.background.stopping:
                raise RuntimeError("the pytest session ended before this background job ran")
            process = subprocess.Popen(cmd, cwd=cwd, env=self.env if env is None else env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
            self.background.processes.add(process)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        finally:
            with self.background.lock:
                self.background.processes.discard(process)
        return subprocess.CompletedProcess(cmd, process.returncode, out, err)


class Background:
    """Tests marked `@pytest.mark.background(job=...)` spend their time waiting on subprocesses (the main job, `train`,
    `accelerate launch`). Their jobs start, one after another in one thread, as soon as the session starts running
    tests, and run on one core while the other tests and the notebooks run on the other; each such test then asserts on
    what its job returned (fixture `background_result`). Jobs start in the reverse order of their tests, so a test
    whose job has not started when its turn comes runs it itself: the two cores share the jobs out between them.
    Every process of the session computes on one thread meanwhile (`pytest_runtestloop`): with two threads beside one,
    the suite measured slower, not faster. A job's exception, `pytest.skip` included, is raised in its test."""

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.root: Path | None = None
        self.futures: dict[Callable, Future] = {}
        self.contexts: dict[Callable, JobContext] = {}
        self.processes: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False

    def start(self, jobs: list[Callable[[JobContext], object]]) -> None:
        if not jobs:
            return
        if self.pool is None:
            self.root = Path(tempfile.mkdtemp(prefix="rlhf-test-background-"))
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background-test")
        for job in jobs:
            folder = self.root / job.__name__
            folder.mkdir()
            self.contexts[job] = JobContext(folder, {**SESSION_ENV, "RLHF_ARTIFACTS": str(folder)}, self)
            self.futures[job] = self.pool.submit(job, self.contexts[job])

    def result(self, job: Callable[[JobContext], object]) -> object:
        """The job's result; a job that has not started by now runs here instead (its test's turn came first)."""
        if job not in self.futures:  # not started with the session (e.g. a test run by its node id from an IDE)
            self.start([job])
        if self.futures[job].cancel():
            return job(self.contexts[job])
        return self.futures[job].result()

    def stop(self) -> None:
        """Jobs not started are dropped and running processes killed (a session stopped early, e.g. by `-x`)."""
        if self.pool is None:
            return
        with self.lock:
            self.stopping = True
            for process in self.processes:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)


BACKGROUND = Background()


def pytest_runtestloop(session: pytest.Session) -> None:
    """Start the selected tests' background jobs, in the reverse order of their tests, before the first test runs."""
    if session.config.option.collectonly or session.testsfailed:  # nothing will run
        return
    jobs = [marker.kwargs["job"] for item in session.items for marker in item.iter_markers("background")]
    if jobs and len(session.items) > len(jobs):  # other tests run beside them: one compute thread per process
        os.environ["OMP_NUM_THREADS"] = SESSION_ENV["OMP_NUM_THREADS"] = "1"  # the kernels nbval starts inherit it
        import torch

        torch.set_num_threads(1)
    BACKGROUND.start(list(dict.fromkeys(reversed(jobs))))


@pytest.fixture
def background_result(request: pytest.FixtureRequest) -> object:
    """What the job of this test's `@pytest.mark.background(job=...)` returned (waiting for it if it still runs)."""
    marker = request.node.get_closest_marker("background")
    assert marker is not None, "background_result needs @pytest.mark.background(job=...) on the test"
    return BACKGROUND.result(marker.kwargs["job"])
