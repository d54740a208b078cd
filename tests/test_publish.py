"""`rlhf_lib.publish`: a run's outputs copied into the source notebooks, without papermill's traces or the machine's."""

from __future__ import annotations

import json

import pytest

from rlhf_lib.publish import publish, publish_front_figure


def cell(cid, kind, source, outputs=None, **metadata):
    c = {"cell_type": kind, "id": cid, "metadata": metadata, "source": source}
    if kind == "code":
        c |= {"execution_count": None, "outputs": outputs or []}
    return c


def notebook(cells, **metadata):
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}, **metadata}, "nbformat": 4,
            "nbformat_minor": 5}


@pytest.fixture()
def run(tmp_path, monkeypatch):
    """A source notebook in `src/` and papermill's executed copy of it in the artifacts of profile `p`."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("RLHF_ARTIFACTS", str(root))
    source = notebook([cell("a", "markdown", "# Title"), cell("b", "code", "profile = 'default'", tags=["parameters"]),
                       cell("c", "code", "train()")])
    executed = notebook([
        cell("a", "markdown", "# Title"),
        cell("b", "code", "profile = 'default'", tags=["parameters"]),
        cell("inj", "code", "profile = \"smoke\"\n", tags=["injected-parameters"], papermill={"duration": 0.1}),
        cell("c", "code", "train()", papermill={"start_time": "2026-12-01T06:00:00", "duration": 3.0},
             execution={"iopub.status.busy": "2026-12-01T06:00:00"}, outputs=[
                 {"output_type": "stream", "name": "stderr",
                  "text": ["PPO:  10%|#\rPPO:  50%|#####\rPPO: 100%|##########\n"]},
                 {"output_type": "stream", "name": "stdout", "text": [f"saved to {root}/p/sft/model\n"]},
                 {"output_type": "display_data", "metadata": {},
                  "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}}},
                 {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo=",
                                                                          "text/plain": ["<Figure>"]}}])],
        papermill={"input_path": "/home/me/nb.ipynb", "start_time": "2026-12-01T06:00:00"})
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "n.ipynb").write_text(json.dumps(source))
    (root / "p" / "notebooks").mkdir(parents=True)
    (root / "p" / "notebooks" / "n.ipynb").write_text(json.dumps(executed))
    return tmp_path


def test_outputs_reach_the_source_cells_without_papermill_traces(run):
    sizes = publish("p", ["n.ipynb"], run / "src", run / "out")
    doc = json.loads((run / "out" / "n.ipynb").read_text())
    assert sizes == {"n.ipynb": len((run / "out" / "n.ipynb").read_bytes())}
    assert [c["id"] for c in doc["cells"]] == ["a", "b", "c"]  # no injected parameters cell
    assert "papermill" not in doc["metadata"] and doc["cells"][2]["metadata"] == {}
    stderr, stdout, figure = doc["cells"][2]["outputs"]  # the widget view is gone, nothing else is
    assert "".join(stderr["text"]) == "PPO: 100%|##########\n"  # the progress bar's final state only
    assert "".join(stdout["text"]) == "saved to artifacts/p/sft/model\n"
    assert figure["data"]["image/png"] == "iVBORw0KGgo="
    assert "2026-12-01" not in (run / "out" / "n.ipynb").read_text()


def test_a_notebook_changed_since_the_run_or_never_run_is_an_error_and_nothing_is_written(run):
    src = json.loads((run / "src" / "n.ipynb").read_text())
    src["cells"][2]["source"] = "train(more=True)"
    (run / "src" / "n.ipynb").write_text(json.dumps(src))
    with pytest.raises(ValueError, match="changed after the run"):
        publish("p", ["n.ipynb"], run / "src", run / "out")
    with pytest.raises(FileNotFoundError, match="python -m rlhf_lib.pipeline --profile q"):
        publish("q", ["n.ipynb"], run / "src", run / "out")
    assert not (run / "out").exists()


def test_the_size_limit_and_leaked_paths_stop_publishing(run):
    with pytest.raises(ValueError, match="over the 0.0 MB limit"):
        publish("p", ["n.ipynb"], run / "src", run / "out", max_total_bytes=100)
    executed = run / "artifacts" / "p" / "notebooks" / "n.ipynb"
    executed.write_text(executed.read_text().replace("saved to ", "saved to /tmp/elsewhere/ and "))
    with pytest.raises(ValueError, match="path of this machine"):
        publish("p", ["n.ipynb"], run / "src", run / "out")
    assert not (run / "out").exists()


def test_the_front_figure_is_copied_where_the_readme_shows_it(run):
    figures = run / "artifacts" / "p" / "eval" / "figures"
    with pytest.raises(FileNotFoundError, match="run the main job's eval step first"):
        publish_front_figure("p", ("eval", "fig", run / "docs" / "f.png"))
    figures.mkdir(parents=True)
    (figures / "fig.png").write_bytes(b"\x89PNG fake")
    assert publish_front_figure("p", ("eval", "fig", run / "docs" / "f.png")).read_bytes() == b"\x89PNG fake"
