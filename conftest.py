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
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
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
    if _SESSION_ARTIFACTS is not None:
        shutil.rmtree(_SESSION_ARTIFACTS, ignore_errors=True)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """`tests/test_smoke_run.py` runs last: by then nbval has executed every notebook in the smoke profile into this
    session's artifacts folder, and its tests read what they wrote (`smoke_artifacts`)."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_smoke_run.py"))


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
