import pytest

from rlhf_lib.artifacts import atomic_path, artifacts_root, read_metrics, save_atomic, step_dir, write_metrics


def test_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    assert artifacts_root() == tmp_path.resolve()
    assert step_dir("smoke", "base") == tmp_path.resolve() / "smoke" / "base"


def test_metrics_round_trip_and_nan_becomes_null(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    assert read_metrics("smoke", "sft") is None
    write_metrics("smoke", "sft", {"a": 1.5, "b": float("nan")})
    assert read_metrics("smoke", "sft") == {"a": 1.5, "b": None}


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "labels.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left behind


def test_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "model"
    save_atomic(target, lambda d: (d / "a.txt").write_text("1"))
    save_atomic(target, lambda d: (d / "b.txt").write_text("2"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_corrupt_metrics_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    (step_dir("smoke", "rm") / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="metrics.json is not valid JSON"):
        read_metrics("smoke", "rm")
