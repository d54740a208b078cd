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
