"""Models and datasets from the Hugging Face hub, or from a local copy in the hub's layout (the `gpt2` profile).

Every hub name in a profile can be a local folder (`save_pretrained`) or data file instead. Where neither the hub
nor a local copy is reachable, `from_hub` stops with the project's own message: which model or dataset is needed,
how to make a local copy, and which field points the profile at it. When the hub's host does not answer, it reads
the hub libraries' caches only, so that the message comes at once rather than after their retries (about 25 s a
file).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlparse

T = TypeVar("T")


class HubUnavailable(OSError):
    """A model or dataset that is neither on this machine nor reachable on the hub."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host (`$HF_ENDPOINT`, else huggingface.co) accepts a connection within `timeout` seconds."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname, url.port or (80 if url.scheme == "http" else 443)), timeout).close()
        return True
    except OSError:
        return False


@contextmanager
def cache_only(on: bool = True) -> Iterator[None]:
    """Inside the block (when `on`), transformers and datasets read their caches and never the network: what
    `HF_HUB_OFFLINE=1` does when set before they are imported."""
    import datasets.config
    import huggingface_hub.constants

    saved = huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    if on:
        huggingface_hub.constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def from_hub(load: Callable[[str], T], name: str, field: str, kind: str = "model") -> T:
    """`load(name)` (from the cache only when the hub does not answer, `cache_only`); when `name` is not a local path
    and loading fails (no network and no cached copy, or no such name on the hub), a `HubUnavailable` error that
    names `field`, the profile field to point at a local copy."""
    try:
        with cache_only(not Path(name).exists() and not hub_reachable()):
            return load(name)
    except (OSError, ConnectionError, ValueError) as err:
        if Path(name).exists():
            raise  # a local copy that does not load is its own problem; its message says what is wrong
        copy = (f"`AutoModelForCausalLM.from_pretrained({name!r}).save_pretrained(folder)` and the same with "
                f"AutoTokenizer" if kind == "model" else
                f"`datasets.load_dataset({name!r}, split='train').to_json(folder + '/train.jsonl')`")
        raise HubUnavailable(
            f"This profile needs the {kind} {name!r} from the Hugging Face hub, and it could not be loaded here "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'no details'}). On a machine "
            f"with internet, save a copy with {copy}; then point the profile at it: `--set {field}=<path>` for the "
            f"main job, or overrides={{{field!r}: '<path>'}} in a notebook.") from err
