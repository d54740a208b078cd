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
os.environ.setdefault("RLHF_ARTIFACTS", tempfile.mkdtemp(prefix="rlhf-test-artifacts-"))
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402  (the environment above comes first)

from rlhf_lib.world import World, build_world  # noqa: E402


@pytest.fixture(scope="session")
def world() -> World:
    """The tests' usual small world (30 people, 8 places, 10 animals, 12 objects, 6 misconceptions), built once.

    Shared by every test module, so tests read it and never change it. A module that needs another size defines its
    own `world` (test_world.py: the default size; test_probes.py and test_nlp_tasks.py: a smaller one)."""
    return build_world(0, n_people=30, n_places=8, n_animals=10, n_objects=12, n_misconceptions=6)
