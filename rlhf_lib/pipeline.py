"""The main job: run the notebooks in order with papermill and write `artifacts/<profile>/report.md`.

    python -m rlhf_lib.pipeline --profile default          # skips steps whose metrics.json exists
    python -m rlhf_lib.pipeline --profile smoke --force    # reruns every step

A step is complete when its `metrics.json` exists (it is written last, atomically), so a killed run resumes at the
first unfinished step; inside a step, training resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rlhf_lib.artifacts import REPO_ROOT, artifacts_root, read_metrics, step_dir, write_json_atomic, write_text_atomic
from rlhf_lib.config import PROFILES, get_profile

NOTEBOOKS: list[tuple[str, str]] = [
    ("base", "00_base_model.ipynb"),
    ("data", "01_dataset.ipynb"),
    ("sft", "02_sft.ipynb"),
    ("rm", "03_reward_model.ipynb"),
    ("ppo", "04_ppo.ipynb"),
    ("ppo_ptx", "05_ppo_ptx.ipynb"),
]
"""(step, notebook) in pipeline order."""

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def run_step(step: str, notebook: str, profile: str, log_output: bool = False) -> float:
    """Execute one notebook with papermill; the executed copy goes to `artifacts/<profile>/notebooks/`."""
    import papermill

    out = artifacts_root() / profile / "notebooks" / notebook
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    papermill.execute_notebook(str(NOTEBOOK_DIR / notebook), str(out), parameters={"profile": profile},
                               cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=True,
                               log_output=log_output)
    if read_metrics(profile, step) is None:
        raise RuntimeError(f"{notebook} ran but did not write {step_dir(profile, step, create=False)}/metrics.json.")
    return time.time() - start


def run(profile: str, force: bool = False, steps: list[str] | None = None, log_output: bool = False) -> dict[str, Any]:
    """Run the pipeline; returns {step: {"status", "seconds"}} and writes report.md and timings.json."""
    get_profile(profile)  # fail early, with the list of valid profiles
    todo = [(s, nb) for s, nb in NOTEBOOKS if steps is None or s in steps]
    unknown = set(steps or []) - {s for s, _ in NOTEBOOKS}
    if unknown:
        raise ValueError(f"Unknown step(s) {sorted(unknown)}. Valid steps: {', '.join(s for s, _ in NOTEBOOKS)}.")
    timings_path = artifacts_root() / profile / "timings.json"
    timings: dict[str, Any] = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    bar = tqdm(todo, desc=f"pipeline [{profile}]", unit="step")
    for step, notebook in bar:
        bar.set_postfix(step=step)
        if not force and read_metrics(profile, step) is not None:
            tqdm.write(f"  {step}: complete, skipped (use --force to rerun)")
            timings.setdefault(step, {"seconds": None})["status"] = "skipped"
            continue
        tqdm.write(f"  {step}: running {notebook} ...")
        seconds = run_step(step, notebook, profile, log_output)
        timings[step] = {"status": "ran", "seconds": round(seconds, 1)}
        write_json_atomic(timings_path, timings)
        tqdm.write(f"  {step}: done in {seconds:.0f} s")
    write_json_atomic(timings_path, timings)
    report = write_report(profile, timings)
    tqdm.write(f"Report: {report}")
    return timings


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ["torch", "transformers", "tokenizers", "datasets", "trl", "peft", "accelerate"]
    return {"python": platform.python_version(), **{n: md.version(n) for n in names}}


def write_report(profile: str, timings: dict[str, Any]) -> Path:
    """`artifacts/<profile>/report.md`: per step its run time, metrics and figures; then versions and seed."""
    root = artifacts_root() / profile
    cfg = get_profile(profile)
    lines = [f"# InstructGPT in miniature: report for profile `{profile}`", "",
             f"Written {time.strftime('%Y-%m-%d %H:%M:%S')}; seed {cfg.seed}; machine {platform.machine()} "
             f"({platform.processor() or 'cpu'}).", "", "## Steps", "",
             "| step | notebook | status | seconds |", "|---|---|---|---|"]
    for step, notebook in NOTEBOOKS:
        t = timings.get(step, {})
        lines.append(f"| {step} | [{notebook}](notebooks/{notebook}) | {t.get('status', 'not run')} | "
                     f"{t.get('seconds') if t.get('seconds') is not None else '-'} |")
    for step, _ in NOTEBOOKS:
        metrics = read_metrics(profile, step)
        if metrics is None:
            continue
        lines += ["", f"## {step}", "", "| metric | value |", "|---|---|"]
        for key, value in sorted(metrics.items()):
            if isinstance(value, (int, float, str, bool)) or value is None:
                lines.append(f"| `{key}` | {round(value, 4) if isinstance(value, float) else value} |")
        for fig in sorted((root / step / "figures").glob("*.png")):
            lines += ["", f"![{fig.stem}]({fig.relative_to(root).as_posix()})"]
    lines += ["", "## Versions", "", *[f"- {k}: {v}" for k, v in _versions().items()], ""]
    path = root / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlhf_lib.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", help=f"one of: {', '.join(PROFILES)} (default: default)")
    parser.add_argument("--force", action="store_true", help="rerun steps even when their metrics.json exists")
    parser.add_argument("--steps", default=None, help="comma-separated subset of steps, e.g. base,data")
    parser.add_argument("--log-output", action="store_true", help="stream the notebooks' output to the terminal")
    args = parser.parse_args(argv)
    try:
        run(args.profile, force=args.force, steps=args.steps.split(",") if args.steps else None,
            log_output=args.log_output)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
