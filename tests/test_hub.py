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


def test_hub_reachable_asks_the_endpoints_host(monkeypatch):
    import socket

    from rlhf_lib.hub import hub_reachable

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert hub_reachable()
    server.close()  # nothing listens there any more: refused at once
    assert not hub_reachable()


def test_an_unreachable_hub_is_read_from_the_cache_only_and_the_mode_is_restored(monkeypatch):
    """Without this, transformers retries each file for about 25 s before the project's message can come."""
    import datasets.config
    import huggingface_hub.constants

    from rlhf_lib import hub

    seen = []

    def load(name):
        seen.append((huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE))
        raise OSError("not in the cache")

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    with pytest.raises(HubUnavailable, match="not in the cache"):
        from_hub(load, "gpt2", "base.hub_model")
    assert seen == [(True, True)]
    assert (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE) == (False, False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    with pytest.raises(HubUnavailable):
        from_hub(load, "gpt2", "base.hub_model")
    assert seen[1] == (False, False)  # reachable: the libraries decide, as they would without the project
