"""The main job: run the notebooks in order with papermill and write `artifacts/<profile>/report.md`.

    python -m rlhf_lib.pipeline --profile default          # skips steps whose metrics.json exists
    python -m rlhf_lib.pipeline --profile smoke --force    # reruns every step
    python -m rlhf_lib.pipeline --profile default --seeds 3  # also seeds 1 and 2: mean and CI of the headlines
    python -m rlhf_lib.pipeline --profile default --publish  # then copy the outputs into notebooks/ (`publish`)
    python -m rlhf_lib.pipeline --profile gpt2 --set ppo.steps=10 --set rm.max_prompts=200  # change fields
    python -m rlhf_lib.pipeline --profile gpt2 --set data.source=real  # the real-data track: notebooks 00 and 08

A step is complete when its `metrics.json` exists (it is written last, atomically), so a killed run resumes at the
first unfinished step; inside a step, training resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rlhf_lib.artifacts import (REPO_ROOT, artifacts_root, read_metrics, real_run_name, step_dir, write_json_atomic,
                                write_text_atomic)
from rlhf_lib.config import PROFILES, REAL_STAGES, get_profile, parse_sets

NOTEBOOKS: list[tuple[str, str]] = [
    ("base", "00_base_model.ipynb"),
    ("data", "01_dataset.ipynb"),
    ("sft", "02_sft.ipynb"),
    ("rm", "03_reward_model.ipynb"),
    ("ppo", "04_ppo.ipynb"),
    ("ppo_ptx", "05_ppo_ptx.ipynb"),
    ("eval", "06_evaluation.ipynb"),
    ("alternatives", "07_alternatives.ipynb"),
]
"""(step, notebook) in pipeline order: the world track (`data.source="world"`)."""

REAL_NOTEBOOKS: list[tuple[str, str]] = [
    ("base", "00_base_model.ipynb"),
    ("real", "08_real_data.ipynb"),
]
"""The real-data track (`data.source="real"`): the base model, then SFT, reward models and PPO on public data,
judged by a gold reward model (`rlhf_lib.real_track`). Notebook 08 writes into the track's own folder
`artifacts/<run>-real/`, one folder per stage (`REAL_STAGES`); its report and timings go there too."""


def notebooks_for(source: str) -> list[tuple[str, str]]:
    """The (step, notebook) list the main job runs for `data.source`."""
    return REAL_NOTEBOOKS if source == "real" else NOTEBOOKS

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def completion_step(run: str, step: str) -> tuple[str, str]:
    """(run folder, step folder) whose `metrics.json` marks `step` of `run` complete: the step's own, or for the
    real-data track's step "real" its last stage's, `artifacts/<run>-real/eval/`."""
    return (real_run_name(run), REAL_STAGES[-1]) if step == "real" else (run, step)


def seed_run_name(profile: str, seed: int) -> str:
    """Artifacts folder of a repeat with another training seed: `artifacts/<profile>-seed<k>/` (seed 0 is the
    profile's own folder)."""
    return profile if seed == 0 else f"{profile}-seed{seed}"


class StepFailed(RuntimeError):
    """A notebook stopped with an error; the message is the error's own (e.g. the project's "needs the model ...
    from the hub" with the field to set), not the kernel's traceback, which stays in the executed notebook."""


def run_step(step: str, notebook: str, profile: str, log_output: bool = False, seed: int = 0,
             overrides: dict[str, Any] | None = None) -> float:
    """Execute one notebook with papermill; the executed copy goes to `artifacts/<run>/notebooks/`. Raises
    `StepFailed` when a cell raises."""
    import papermill

    name = seed_run_name(profile, seed)
    overrides = {**(overrides or {}), **({} if seed == 0 else {"seed": seed, "name": name})}
    out = artifacts_root() / name / "notebooks" / notebook
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    try:
        papermill.execute_notebook(str(NOTEBOOK_DIR / notebook), str(out),
                                   parameters={"profile": profile, "overrides": overrides},
                                   cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=True,
                                   log_output=log_output)
    except papermill.PapermillExecutionError as err:
        raise StepFailed(f"step {step} ({notebook}) stopped. {err.ename}: {err.evalue}\nThe executed notebook, "
                         f"with the full traceback: {out}") from err
    done = completion_step(name, step)
    if read_metrics(*done) is None:
        raise RuntimeError(f"{notebook} ran but did not write {step_dir(*done, create=False)}/metrics.json.")
    return time.time() - start


def run(profile: str, force: bool = False, steps: list[str] | None = None, log_output: bool = False,
        seed: int = 0, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the pipeline; returns {step: {"status", "seconds"}} and writes report.md and timings.json. `overrides`
    ({"ppo.steps": 10, ...}) change the profile's fields in every notebook; `data.source` picks the track."""
    cfg = get_profile(profile, overrides)  # fail early, with the list of valid profiles or fields
    notebooks = notebooks_for(cfg.data.source)
    todo = [(s, nb) for s, nb in notebooks if steps is None or s in steps]
    unknown = set(steps or []) - {s for s, _ in notebooks}
    if unknown:
        raise ValueError(f"Unknown step(s) {sorted(unknown)}. Valid steps: {', '.join(s for s, _ in notebooks)} "
                         f"(data.source={cfg.data.source!r}).")
    name = seed_run_name(profile, seed)
    track_run = real_run_name(name) if notebooks is REAL_NOTEBOOKS else name  # where timings and report go
    timings_path = artifacts_root() / track_run / "timings.json"
    timings: dict[str, Any] = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    bar = tqdm(todo, desc=f"pipeline [{name}]", unit="step")
    for step, notebook in bar:
        bar.set_postfix(step=step)
        if not force and read_metrics(*completion_step(name, step)) is not None:
            tqdm.write(f"  {step}: complete, skipped (use --force to rerun)")
            timings.setdefault(step, {"seconds": None})["status"] = "skipped"
            continue
        tqdm.write(f"  {step}: running {notebook} ...")
        seconds = run_step(step, notebook, profile, log_output, seed, overrides)
        timings[step] = {"status": "ran", "seconds": round(seconds, 1)}
        write_json_atomic(timings_path, timings)
        tqdm.write(f"  {step}: done in {seconds:.0f} s")
    write_json_atomic(timings_path, timings)
    report = write_report(track_run, timings, seed, notebooks=notebooks)
    tqdm.write(f"Report: {report}")
    return timings


HEADLINES = ("sft/gold_sft", "rm/acc_train_labelers", "rm/acc_heldout_labelers", "ppo/gold_ppo_minus_sft",
             "ppo/kl_final", "ppo_ptx/ppo/benchmark_mean", "ppo_ptx/ppo_ptx/benchmark_mean",
             "eval/ppo_ptx/winrate_vs_sft", "eval/ppo/winrate_vs_sft", "eval/gpt/winrate_vs_sft",
             "eval/gpt_large_prompted/winrate_vs_sft", "eval/ppo_ptx/truthful",
             "eval/ppo_ptx/toxicity_respectful", "eval/n_findings_hold")
"""The figures `--seeds` repeats: `step/key/...` paths into each step's metrics.json."""

REAL_HEADLINES = ("rm/acc_heldout_pairs", "rm/gold_rm_acc_heldout_pairs", "eval/gold_rm_winrate_vs_sft/sft",
                  "eval/gold_rm_winrate_vs_sft/ppo", "eval/gold_rm_winrate_vs_sft/ppo_ptx", "eval/kl_to_sft/ppo",
                  "eval/kl_to_sft/ppo_ptx")
"""The same for the real-data track, read in each seed's `artifacts/<run>-real/`."""


def headline(run_name: str, path: str) -> float | None:
    step, *keys = path.split("/")
    value: Any = read_metrics(run_name, step)
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def summarize_seeds(profile: str, n_seeds: int, real: bool = False) -> dict[str, dict[str, Any]]:
    """Per headline figure (`HEADLINES`, or `REAL_HEADLINES` for the real-data track): the value of every seed, their
    mean and a 95% t-interval half-width (n_seeds >= 2); written to the track's `seeds.json`."""
    from scipy import stats

    def run_of(seed: int) -> str:
        return real_run_name(seed_run_name(profile, seed)) if real else seed_run_name(profile, seed)

    out = {}
    for path in REAL_HEADLINES if real else HEADLINES:
        values = [headline(run_of(k), path) for k in range(n_seeds)]
        xs = [v for v in values if v is not None]
        half = float(stats.t.ppf(0.975, len(xs) - 1) * stats.tstd(xs) / len(xs) ** 0.5) if len(xs) >= 2 else None
        out[path] = {"values": values, "mean": sum(xs) / len(xs) if xs else None, "ci": half}
    write_json_atomic(artifacts_root() / run_of(0) / "seeds.json", out)
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ["torch", "transformers", "tokenizers", "datasets", "trl", "peft", "accelerate"]
    return {"python": platform.python_version(), **{n: md.version(n) for n in names}}


def real_track_lines(rm: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """The report's table of the real-data track from its `rm` and `eval` metrics: the reward models' held-out pair
    accuracy, then per policy the gold reward model's win rate against SFT with its 95% interval, the mean proxy and
    gold scores, the KL to SFT."""
    lines = ["## The real-data track, judged by the gold reward model", "",
             f"Reward models' held-out pair accuracy: proxy {rm['acc_heldout_pairs']:.3f}, gold "
             f"{rm['gold_rm_acc_heldout_pairs']:.3f} ({rm['n_heldout_pairs']} pairs).", "",
             "| policy | gold-RM win rate vs SFT [95% CI] | proxy RM | gold RM | KL to SFT |", "|---|---|---|---|---|"]
    for p, rate in metrics["gold_rm_winrate_vs_sft"].items():
        lo, hi = metrics["gold_rm_winrate_vs_sft_ci"][p]
        lines.append(f"| {p} | {rate:.3f} [{lo:.3f}, {hi:.3f}] | {metrics['proxy_rm_score'][p]:.3f} | "
                     f"{metrics['gold_rm_score'][p]:.3f} | {metrics['kl_to_sft'][p]:.2f} |")
    return lines + [""]


def write_report(profile: str, timings: dict[str, Any], seed: int = 0,
                 seeds: dict[str, dict[str, Any]] | None = None,
                 notebooks: list[tuple[str, str]] = NOTEBOOKS) -> Path:
    """`artifacts/<profile>/report.md`: the findings table (or the real-data track's), per step its run time, metrics
    and figures; then versions and seed. `notebooks`: the track that ran; for the real-data track `profile` is its
    folder (`<run>-real`), whose stages' metrics are listed."""
    root = artifacts_root() / profile
    ran = [timings.get(step, {}) for step, _ in notebooks]  # this track's steps (timings.json may hold both)
    total = sum(t.get("seconds") or 0 for t in ran if t.get("status") == "ran")
    lines = [f"# InstructGPT in miniature: report for `{profile}`", "",
             f"Written {time.strftime('%Y-%m-%d %H:%M:%S')}; training seed {seed}; machine {platform.machine()} "
             f"({platform.processor() or 'cpu'}), {os.cpu_count()} CPU cores.", ""]
    world_track = ("eval", "06_evaluation.ipynb") in notebooks
    findings = (read_metrics(profile, "eval") or {}).get("findings") if world_track else None
    if findings:
        held = sum(f["holds"] for f in findings)
        lines += ["## The paper's findings here", "", f"{held} of {len(findings)} hold.", "",
                  "| finding (the paper) | ours | holds | test |", "|---|---|---|---|",
                  *[f"| {f['claim']} | {f['ours']} | {'yes' if f['holds'] else 'no'} | {f.get('test', '')} |"
                    for f in findings], ""]
    real_track = notebooks is REAL_NOTEBOOKS
    real_rm, real_eval = (read_metrics(profile, "rm"), read_metrics(profile, "eval")) if real_track else (None, None)
    if real_rm and real_eval:
        lines += real_track_lines(real_rm, real_eval)
    if seeds:
        n = len(next(iter(seeds.values()))["values"])
        lines += [f"## Headline figures over {n} training seeds", "", "| figure | mean ± 95% CI | per seed |",
                  "|---|---|---|"]
        for path, v in seeds.items():
            per = ", ".join("-" if x is None else f"{x:.3f}" for x in v["values"])
            mean = "-" if v["mean"] is None else f"{v['mean']:.3f}" + ("" if v["ci"] is None else f" ± {v['ci']:.3f}")
            lines.append(f"| `{path}` | {mean} | {per} |")
        lines.append("")
    lines += ["## Steps", "", f"Run time of the steps that ran: {total / 60:.1f} min.", "",
              "| step | notebook | status | seconds |", "|---|---|---|---|"]
    # `run_step` keeps every executed notebook in the run's own folder, beside the real-data track's (`<run>-real`)
    executed = "../" + profile.removesuffix("-real") + "/notebooks" if real_track else "notebooks"
    for step, notebook in notebooks:
        t = timings.get(step, {})
        lines.append(f"| {step} | [{notebook}]({executed}/{notebook}) | {t.get('status', 'not run')} | "
                     f"{t.get('seconds') if t.get('seconds') is not None else '-'} |")
    for step in REAL_STAGES if real_track else [step for step, _ in notebooks]:
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
    parser.add_argument("--seeds", type=int, default=1,
                        help="repeat the training steps with seeds 0..N-1 and report mean and CI of the headlines")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a profile field in every notebook, e.g. --set ppo.beta=0.05 (repeatable)")
    parser.add_argument("--publish", action="store_true",
                        help="after the run, write the executed notebooks with their outputs into notebooks/")
    args = parser.parse_args(argv)
    try:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be 1 or more, got {args.seeds}.")
        steps = args.steps.split(",") if args.steps else None
        overrides = parse_sets(args.set)
        notebooks = notebooks_for(get_profile(args.profile, overrides).data.source)
        ran = [step for step, _ in notebooks if steps is None or step in steps]
        for seed in range(args.seeds):
            timings = run(args.profile, force=args.force, steps=steps, log_output=args.log_output, seed=seed,
                          overrides=overrides)
            if seed == 0:
                first = timings
        if args.seeds > 1:
            real = notebooks is REAL_NOTEBOOKS
            report = write_report(real_run_name(args.profile) if real else args.profile, first, 0,
                                  summarize_seeds(args.profile, args.seeds, real), notebooks)
            tqdm.write(f"Report with {args.seeds} seeds: {report}")
        if args.publish:
            from rlhf_lib.publish import publish, publish_front_figure

            sizes = publish(args.profile, [nb for step, nb in notebooks if step in ran], NOTEBOOK_DIR)
            tqdm.write(f"Published {len(sizes)} notebooks with their outputs into {NOTEBOOK_DIR} "
                       f"({sum(sizes.values()) / 1e6:.2f} MB).")
            if "eval" in ran:
                tqdm.write(f"The README's figure: {publish_front_figure(args.profile)}")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StepFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
