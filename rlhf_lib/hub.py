"""Models and datasets from the Hugging Face hub, or from a local copy in the hub's layout (the `gpt2` profile).

Every hub name in a profile can be a local folder (`save_pretrained`) or data file instead. Where neither the hub
nor a local copy is reachable, `from_hub` stops with the project's own message: which model or dataset is needed,
how to make a local copy, and which field points the profile at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


class HubUnavailable(OSError):
    """A model or dataset that is neither on this machine nor reachable on the hub."""


def from_hub(load: Callable[[str], T], name: str, field: str, kind: str = "model") -> T:
    """`load(name)`; when `name` is not a local path and loading fails (no network, or no such name on the hub),
    a `HubUnavailable` error that names `field`, the profile field to point at a local copy."""
    try:
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
