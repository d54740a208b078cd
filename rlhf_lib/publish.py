"""Notebooks that carry their results: copy a run's outputs into `notebooks/`, so that a reader on GitHub or in Colab
sees the plots and numbers before running anything (`python -m rlhf_lib.pipeline --profile default --publish`).

The published notebook is the source notebook, cell for cell, with the outputs of the executed copy that papermill
wrote to `artifacts/<profile>/notebooks/`: papermill's injected parameters cell is left out (so the notebook still
reads `$RLHF_PROFILE` and runs in the smoke profile under the tests), and so are its timestamps and the machine's
paths. Progress bars keep their final state only. The total size is checked against a limit, since every figure is
embedded.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from rlhf_lib.artifacts import REPO_ROOT, artifacts_root, write_text_atomic

FRONT_FIGURE = ("eval", "winrate_and_likert", REPO_ROOT / "docs" / "figure1.png")
"""The paper's Figure 1 analogue (notebook 06): step, figure name, and where the README shows it from."""

MAX_TOTAL_BYTES = 4_000_000
"""The published notebooks together stay under this size (the repository is cloned by every Colab user)."""

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _final_state(text: str) -> str:
    """A stream as a terminal shows it at the end: each line's text after its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _scrub(text: str, paths: dict[str, str]) -> str:
    """The machine's paths replaced by the names a reader knows (`artifacts/`, the repository's own paths)."""
    for path, name in paths.items():
        text = text.replace(path, name)
    return text


def clean_output(out: dict[str, Any], paths: dict[str, str]) -> dict[str, Any] | None:
    """One output without progress-bar history, widget views (their state is not saved; the text fallback stays)
    or the machine's paths; None when nothing is left to show."""
    out = copy.deepcopy(out)
    if out["output_type"] == "stream":
        text = _scrub(_final_state("".join(out["text"])), paths)
        out["text"] = text.splitlines(keepends=True)
        return out if text.strip() else None
    data = out.get("data")
    if data is not None:
        data.pop(WIDGET_VIEW, None)
        if not data:
            return None
        for kind, value in data.items():
            if kind.startswith("text/"):
                data[kind] = _scrub("".join(value) if isinstance(value, list) else value, paths).splitlines(
                    keepends=True)
    return out


def published(source: dict[str, Any], executed: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """`source` with the outputs of `executed`, matched by cell id (papermill keeps the ids). A source cell that
    the executed copy lacks means the notebook changed after the run: an error, not a silent gap."""
    runs = {c.get("id"): c for c in executed["cells"] if c["cell_type"] == "code"}
    out = copy.deepcopy(source)
    for cell in out["cells"]:
        if cell["cell_type"] != "code":
            continue
        ran = runs.get(cell.get("id"))
        if ran is None or "".join(ran["source"]) != "".join(cell["source"]):
            raise ValueError(f"Cell {cell.get('id')!r} differs from the executed copy: the notebook changed after "
                             "the run. Run the main job again (add --force), then publish.")
        cell["outputs"] = [o for o in (clean_output(o, paths) for o in ran.get("outputs", [])) if o is not None]
        cell["execution_count"] = ran.get("execution_count")
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k not in ("papermill", "execution")}
    out["metadata"] = {k: v for k, v in out.get("metadata", {}).items() if k != "papermill"}
    return out


def publish(profile: str, notebooks: list[str], source_dir: Path, dest_dir: Path | None = None,
            max_total_bytes: int = MAX_TOTAL_BYTES) -> dict[str, int]:
    """Write each of `notebooks` with the outputs of `profile`'s last run to `dest_dir` (default: `source_dir`, the
    repository's `notebooks/`); returns {notebook: bytes}. Nothing is written unless every notebook has an executed
    copy and all of them fit `max_total_bytes` together."""
    run_dir = artifacts_root() / profile / "notebooks"
    dest_dir = dest_dir or source_dir
    paths = {str(artifacts_root().resolve()): "artifacts", str(artifacts_root()): "artifacts",
             str(REPO_ROOT.resolve()) + "/": "", str(REPO_ROOT.resolve()): ".", str(Path.home()): "~"}
    texts = {}
    for name in notebooks:
        executed_path = run_dir / name
        if not executed_path.exists():
            raise FileNotFoundError(f"No executed copy of {name} at {executed_path}: run "
                                    f"`python -m rlhf_lib.pipeline --profile {profile}` first.")
        doc = published(json.loads((source_dir / name).read_text()), json.loads(executed_path.read_text()), paths)
        texts[name] = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    sizes = {name: len(text.encode()) for name, text in texts.items()}
    if sum(sizes.values()) > max_total_bytes:
        each = ", ".join(f"{n}: {s / 1e6:.2f} MB" for n, s in sizes.items())
        raise ValueError(f"The published notebooks would take {sum(sizes.values()) / 1e6:.1f} MB, over the "
                         f"{max_total_bytes / 1e6:.1f} MB limit ({each}). Make the figures smaller (figsize, fewer "
                         "points) and publish again.")
    leaked = [name for name, text in texts.items() if re.search(r"/(tmp|home|root|Users)/\S", text)]
    if leaked:
        raise ValueError(f"{', '.join(leaked)} still show(s) a path of this machine after scrubbing; find the output "
                         "that prints it and print a path relative to the artifacts folder instead.")
    for name, text in texts.items():
        write_text_atomic(dest_dir / name, text)
    return sizes


def publish_front_figure(profile: str, figure: tuple[str, str, Path] = FRONT_FIGURE) -> Path:
    """Copy the run's Figure 1 analogue to where the README shows it."""
    from rlhf_lib.artifacts import atomic_path, step_dir

    step, name, dest = figure
    source = step_dir(profile, step, create=False) / "figures" / f"{name}.png"
    if not source.exists():
        raise FileNotFoundError(f"No {source}: run the main job's {step} step first.")
    with atomic_path(dest) as tmp:
        tmp.write_bytes(source.read_bytes())
    return dest
