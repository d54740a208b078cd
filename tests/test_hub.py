"""`rlhf_lib.hub`: with no network and no local copy, the project's own message names what is needed and where to
point the profile (the tests run with HF_HUB_OFFLINE=1, so nothing here reaches the network)."""

from __future__ import annotations

import pytest
from transformers import GPT2LMHeadModel

from rlhf_lib.config import get_profile
from rlhf_lib.hub import HubUnavailable, from_hub
from rlhf_lib.real_data import load_hh_rlhf


def test_a_hub_model_that_cannot_be_loaded_names_the_field_to_set():
    with pytest.raises(HubUnavailable, match=r"needs the model 'gpt2-medium'.*--set eval.large_hub_model=<path>"):
        from_hub(GPT2LMHeadModel.from_pretrained, "gpt2-medium", "eval.large_hub_model")


def test_the_gpt2_profile_offline_stops_at_its_first_step_with_that_message():
    from rlhf_lib.base_model import get_tokenizer

    with pytest.raises(HubUnavailable, match=r"'gpt2' .*--set base.hub_model=<path>"):
        get_tokenizer(get_profile("gpt2"))


def test_a_hub_dataset_that_cannot_be_loaded_names_its_field():
    with pytest.raises(HubUnavailable, match=r"the dataset 'Anthropic/hh-rlhf'.*data.real_rm"):
        load_hh_rlhf("train", "Anthropic/hh-rlhf", limit=2)


def test_a_local_copy_loads_and_its_own_errors_pass_through(tmp_path):
    from rlhf_lib.base_model import new_model
    from rlhf_lib.tokenizer import train_tokenizer

    cfg = get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 16, "base.n_head": 2})
    model = new_model(cfg.base, train_tokenizer(["a b c d e f"] * 20, vocab_size=270), seed=0)
    model.save_pretrained(tmp_path / "gpt2")
    loaded = from_hub(GPT2LMHeadModel.from_pretrained, str(tmp_path / "gpt2"), "base.hub_model")
    assert loaded.config.n_layer == 1
    (tmp_path / "broken").mkdir()
    with pytest.raises(OSError) as err:  # a folder without weights: transformers' message, not "hub unreachable"
        from_hub(GPT2LMHeadModel.from_pretrained, str(tmp_path / "broken"), "base.hub_model")
    assert not isinstance(err.value, HubUnavailable)
