import pytest

from rlhf_lib.config import PROFILES, REAL_STEPS, STEPS, get_profile


def test_profiles_exist_and_are_fresh_copies():
    assert set(PROFILES) == {"smoke", "default", "gpt2"}
    a, b = get_profile("default"), get_profile("default")
    a.base.max_steps = 1
    assert b.base.max_steps != 1
    assert get_profile("gpt2").base.hub_model == "gpt2" and not get_profile("gpt2").offline
    assert get_profile("smoke").offline and get_profile("default").base.hub_model is None
    assert STEPS[0] == "base" and STEPS[-2:] == ("eval", "alternatives")


def test_steps_are_the_main_jobs_notebooks_in_order():
    from rlhf_lib.pipeline import NOTEBOOKS

    assert STEPS == tuple(step for step, _ in NOTEBOOKS)
    assert [nb[:2] for _, nb in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))]


def test_the_real_track_is_the_base_model_then_notebook_08():
    from rlhf_lib.pipeline import NOTEBOOKS, REAL_NOTEBOOKS, notebooks_for

    assert REAL_STEPS == tuple(step for step, _ in REAL_NOTEBOOKS) == ("base", "real")
    assert REAL_NOTEBOOKS[0] == NOTEBOOKS[0] and REAL_NOTEBOOKS[1][1] == "08_real_data.ipynb"
    assert notebooks_for("world") is NOTEBOOKS and notebooks_for("real") is REAL_NOTEBOOKS


def test_data_source_is_world_by_default_and_checked():
    assert all(get_profile(name).data.source == "world" for name in PROFILES)
    real = get_profile("smoke", {"data.source": "real", "data.real_sft": "d.jsonl", "data.real_rm": "h.jsonl"})
    assert real.data.source == "real"
    with pytest.raises(ValueError, match="data.source must be one of 'world', 'real', got 'hub'"):
        get_profile("smoke", {"data.source": "hub"})
    with pytest.raises(ValueError, match=r"needs data.real_rm: .*--set data.real_sft="):
        get_profile("smoke", {"data.source": "real", "data.real_sft": "d.jsonl"})
    with pytest.raises(ValueError, match="needs data.real_sft and data.real_rm"):
        get_profile("gpt2", {"data.source": "real", "data.real_sft": None, "data.real_rm": None})


def test_the_gpt2_profile_sizes_the_real_track_for_a_gpu():
    small, gpt2 = get_profile("default").real, get_profile("gpt2").real
    assert gpt2.rm_comparisons > small.rm_comparisons and gpt2.ppo_steps > small.ppo_steps
    assert gpt2.rm_comparisons <= gpt2.rm_rows / 2  # a half of the rows read can hold them
    assert gpt2.max_len <= 1024 and gpt2.max_prompt_tokens + get_profile("gpt2").ppo.max_new_tokens < 1024


def test_smoke_is_smaller_than_default():
    smoke, default = get_profile("smoke"), get_profile("default")
    assert smoke.world.corpus_chars < default.world.corpus_chars
    assert smoke.base.max_steps < default.base.max_steps
    assert smoke.base.n_embd < default.base.n_embd


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError, match="Valid profiles: smoke, default, gpt2"):
        get_profile("nonsense")


def test_env_var_selects_profile(monkeypatch):
    monkeypatch.setenv("RLHF_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    monkeypatch.delenv("RLHF_PROFILE")
    assert get_profile().name == "default"


def test_overrides_by_dotted_name():
    cfg = get_profile("smoke", {"base.max_steps": 7, "base.lr": 1, "seed": 3, "base.hub_model": None})
    assert cfg.base.max_steps == 7 and cfg.base.lr == 1.0 and isinstance(cfg.base.lr, float) and cfg.seed == 3


@pytest.mark.parametrize("key, message", [
    ("base.nope", "Valid fields of base: hub_model, seed, shipped_weights, n_layer"),
    ("nope", "Valid fields of the profile: name, seed"),
    ("world.seed.x", "is a value, not a group"),
    ("base", "is a group"),
])
def test_unknown_field_is_a_clear_error(key, message):
    with pytest.raises(ValueError, match=message):
        get_profile("smoke", {key: 1})


@pytest.mark.parametrize("key, value", [("base.max_steps", "ten"), ("base.max_steps", 1.5),
                                        ("base.max_steps", True), ("offline", 1), ("base.n_layer", None)])
def test_wrong_type_is_a_clear_error(key, value):
    with pytest.raises(ValueError, match="expects"):
        get_profile("smoke", {key: value})


def test_tuple_fields_take_lists_and_reject_other_values():
    cfg = get_profile("smoke", {"ppo.ptx_sweep": [1, 2.5]})
    assert cfg.ppo.ptx_sweep == (1.0, 2.5)
    with pytest.raises(ValueError, match="ppo.ptx_sweep.*list of numbers"):
        get_profile("smoke", {"ppo.ptx_sweep": "1,2"})
