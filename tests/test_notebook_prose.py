"""Prose that never goes stale: a decimal figure in a notebook's markdown must come from the run beside it.

A figure a reader sees in the text is either printed or rendered by a cell of the same notebook (so it is in the
notebook's stored outputs), or one of the paper's own figures and fixed constants listed in `FIXED_FIGURES`, the
one place where exceptions live. Section, table and figure numbers, LaTeX and code spans are not figures.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

FIXED_FIGURES = {
    "45.3": "the paper's Table 1: share of generation prompts",
    "12.4": "the paper's Table 1: share of open QA prompts",
    "11.2": "the paper's Table 1: share of brainstorming prompts",
    "72.6": "the paper: agreement among training labelers (Section 5.1)",
    "77.3": "the paper: agreement among held-out labelers",
    "1.5": "the paper: the ± of the training labelers' agreement",
    "1.3": "the paper: the ± of the held-out labelers' agreement; and its 1.3B model",
    "72.4": "the paper: its reward model's accuracy on training labelers' comparisons",
    "0.992": "the paper: EMA decay of the PPO policy's weights (Appendix C.4)",
    "0.02": "the paper: the KL coefficient beta (Appendix C.4)",
    "0.2": "the paper: PPO's clip ratio (Appendix C.4)",
    "27.8": "the paper: the pretraining coefficient gamma (Appendix C.4)",
    "0.05": "the precision to which Figure 4's bars are read (notebook 01)",
    "0.5": "a coin flip: the win rate of a model against itself",
}
"""Figures that may stand in markdown without a cell printing them: the paper's own, and constants of a method."""

REFERENCE = re.compile(r"(Section|Sections|Table|Figure|Figures|Appendix|Equation)\s+[A-Z]?\d+(\.\d+)+")
DECIMAL = re.compile(r"(?<![\w.])[-+±]?(\d+\.\d+)")


def figures_in_markdown(text: str) -> list[str]:
    """The decimal figures a markdown text states, without LaTeX, code spans and section/figure numbers."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", " ", text, flags=re.S)
    text = REFERENCE.sub(" ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets (URLs with version numbers)
    return [m.group(1) for m in DECIMAL.finditer(text)]


def output_text(cell: dict) -> str:
    """Everything a code cell's stored outputs show as text."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        for kind in ("text/plain", "text/markdown", "text/html"):
            parts.append("".join(out.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def test_figures_in_markdown_finds_figures_and_skips_references_latex_and_code():
    text = "Section 3.5 and Figure 4.2: $\\beta = 0.02$, `lr=3e-4 or 0.5`, gold 6.23 ± 0.19, [x](http://a/1.2)."
    assert figures_in_markdown(text) == ["6.23", "0.19"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_decimal_in_the_prose_comes_from_the_run_or_is_listed(path):
    cells = json.loads(path.read_text())["cells"]
    outputs = "\n".join(output_text(c) for c in cells if c["cell_type"] == "code")
    stated = {f for c in cells if c["cell_type"] == "markdown" for f in figures_in_markdown("".join(c["source"]))}
    unexplained = sorted(f for f in stated if f not in FIXED_FIGURES and f not in outputs)
    assert not unexplained, (f"{path.name} states {unexplained} in markdown: print or render them from the run "
                             "(a cell's output), or, if they are the paper's own figures, add them to FIXED_FIGURES")
