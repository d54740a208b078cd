from dataclasses import replace

import pytest
import torch

from rlhf_lib import base_model as bm
from rlhf_lib.config import get_profile
from rlhf_lib.labels import Judgement
from rlhf_lib.losses import rm_loss
from rlhf_lib.reward_model import (Comparison, RewardModel, accuracies, as_pairs, comparisons_from,
                                   encode_comparisons, last_token_index, normalize, score_comparisons, train_rm)
from rlhf_lib.tokenizer import train_tokenizer

TEXTS = ["Q: Where does Mira live?\nA: Mira lives in Oakridge.", "You idiot. Mira lives in Oakridge."] * 40


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def cfg():
    return get_profile("smoke", {"base.n_layer": 1, "base.n_embd": 32, "base.n_head": 2, "base.block_size": 64,
                                 "rm.batch_size": 4, "rm.lr": 3e-3, "rm.warmup_steps": 1, "rm.max_len": 64})


@pytest.fixture()
def rm(tokenizer, cfg):
    return RewardModel.from_lm(bm.new_model(cfg.base, tokenizer, seed=0)).eval()


def test_last_token_index_for_both_padding_sides():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(right).tolist() == [2, 4] and last_token_index(left).tolist() == [4, 4]


def test_score_is_read_at_the_last_real_token_whatever_the_padding(rm, tokenizer):
    ids = tokenizer("Mira lives in Oakridge.")["input_ids"] + [tokenizer.eos_token_id]
    alone = rm(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
    pad = [tokenizer.pad_token_id] * 3
    right = rm(torch.tensor([ids + pad]), torch.tensor([[1] * len(ids) + [0] * 3]))
    left = rm(torch.tensor([pad + ids]), torch.tensor([[0] * 3 + [1] * len(ids)]))
    torch.testing.assert_close(right, alone)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-5)
    # the off-by-one others have had: reading one token early gives a different score
    early = rm(torch.tensor([ids[:-1]]), torch.ones(1, len(ids) - 1, dtype=torch.long))
    assert not torch.allclose(early, alone)


def test_unembedding_removed_and_head_small(rm):
    assert not any("lm_head" in n for n, _ in rm.named_parameters())
    assert rm.head.weight.std().item() < 2 / (rm.config.n_embd + 1) ** 0.5


def test_k_completions_are_scored_once_each_in_one_batch(rm, tokenizer):
    batch = [Comparison("Q: Where does Mira live?\nA:", [" Oakridge.", " Idiot.", " Mira lives in Oakridge."],
                        [1, 3, 2]), Comparison("Hi\n", ["Hello.", "Go away."], [1, 2])]
    enc = encode_comparisons(tokenizer, batch, 64)
    assert enc["input_ids"].shape[0] == 5 and enc["ranks"].tolist() == [[1, 3, 2], [1, 2, -1]]
    scores = score_comparisons(rm, enc)
    assert scores.shape == (2, 3) and scores[1, 2] == 0
    last = enc["input_ids"][torch.arange(5), last_token_index(enc["attention_mask"])]
    assert (last == tokenizer.eos_token_id).all()


def test_scoring_in_length_pieces_gives_the_same_scores_and_gradients(rm, tokenizer):
    batch = [Comparison("Q: Where does Mira live? Tell me about the fox, please.\nA:", [" Oakridge.", " Idiot."],
                        [1, 2]), Comparison("Hi\n", ["Hello.", "Go away, you idiot.", "Mira."], [2, 1, 2])]
    enc = encode_comparisons(tokenizer, batch, 64)
    grads = []
    for max_tokens in (None, 24):  # 24 tokens: the long prompt's completions pass alone, the short ones together
        rm.zero_grad()
        scores = score_comparisons(rm, enc, max_tokens)
        rm_loss(scores, enc["ranks"]).backward()
        grads.append((scores.detach(), [p.grad.clone() for p in rm.parameters()]))
    torch.testing.assert_close(grads[1][0], grads[0][0], atol=1e-5, rtol=1e-5)
    for g_piece, g_one in zip(grads[1][1], grads[0][1]):
        torch.testing.assert_close(g_piece, g_one, atol=1e-5, rtol=1e-4)


def test_the_head_is_initialised_from_the_seed_alone(tokenizer, cfg):
    torch.manual_seed(123)
    a = RewardModel.from_lm(bm.new_model(cfg.base, tokenizer, seed=0), seed=3)
    torch.manual_seed(456)  # whatever ran before
    b = RewardModel.from_lm(bm.new_model(cfg.base, tokenizer, seed=0), seed=3)
    c = RewardModel.from_lm(bm.new_model(cfg.base, tokenizer, seed=0), seed=4)
    assert torch.equal(a.head.weight, b.head.weight) and not torch.equal(a.head.weight, c.head.weight)


def test_pairs_ablation_expands_every_untied_pair():
    c = Comparison("p", ["a", "b", "c", "d"], [1, 2, 2, 3])
    pairs = as_pairs([c])
    assert len(pairs) == 5 and all(p.ranks == [1, 2] for p in pairs)
    assert ("a", "d") in {(p.completions[0], p.completions[1]) for p in pairs}


def test_accuracies_count_pairs_ordered_like_the_labeler_and_score_shared_completions_once(rm, tokenizer,
                                                                                             monkeypatch):
    import rlhf_lib.reward_model as R

    comps = [" Mira lives in Oakridge.", " You idiot.", " Oakridge."]
    enc = encode_comparisons(tokenizer, [Comparison("Q: Where?\nA:", comps, [1, 2, 3])], 64)
    s = rm(enc["input_ids"], enc["attention_mask"]).tolist()
    order = sorted(range(3), key=lambda i: -s[i])                          # the RM's own ranking: 3 pairs right
    ranks_rm = [order.index(i) + 1 for i in range(3)]
    ranks_rev = [4 - r for r in ranks_rm]                                   # the reverse: 0 right
    ranks_tie = [1 if i == order[0] else 2 for i in range(3)]               # best vs two tied: 2 pairs, both right
    q = "Q: Where?\nA:"
    sets = {"rm": [Comparison(q, comps, ranks_rm)], "rev": [Comparison(q, comps, ranks_rev)],
            "tie": [Comparison(q, comps, ranks_tie)],
            "mixed": [Comparison(q, comps, ranks_rm), Comparison(q, comps[:2], [1, 1])]}
    calls = []
    score = R.score_comparisons
    monkeypatch.setattr(R, "score_comparisons", lambda *a, **k: (calls.append(1), score(*a, **k))[1])
    acc = accuracies(rm, tokenizer, sets, 64)
    assert acc == {"rm": 1.0, "rev": 0.0, "tie": 1.0, "mixed": 1.0}
    assert len(calls) == 2  # rm, rev and tie rank the same completions: scored once; mixed has other ones


def test_training_learns_a_preference_and_normalize_centres(rm, tokenizer, cfg):
    good = [" Mira lives in Oakridge.", " Oakridge."]
    bad = [" You idiot.", " Idiot, go away."]
    train = [Comparison(f"Q: Where does Mira live? {i}\nA:", [good[i % 2], bad[i % 2], bad[(i + 1) % 2]], [1, 2, 2])
             for i in range(24)]
    rm.train()
    hist = train_rm(rm, tokenizer, train, {"v": train[:8]}, cfg.rm, seed=0, epochs=3, progress=False)
    assert hist["v_acc"][-1] > 0.9 and hist["loss"][-1] < hist["loss"][0]
    pairs = [(c.prompt, c.completions[0]) for c in train]
    normalize(rm, tokenizer, pairs, 64)
    enc = encode_comparisons(tokenizer, [Comparison(p, [d], [1]) for p, d in pairs], 64)
    assert abs(rm(enc["input_ids"], enc["attention_mask"]).mean().item()) < 1e-4


def test_nan_loss_stops_training_with_a_clear_message(rm, tokenizer, cfg, monkeypatch):
    import rlhf_lib.reward_model as R

    monkeypatch.setattr(R, "rm_loss", lambda scores, ranks: scores.sum() * float("nan"))
    train = [Comparison("Q: Hi?\nA:", [" Hello.", " Go away."], [1, 2]) for _ in range(8)]
    with pytest.raises(FloatingPointError, match="lower rm.lr"):
        train_rm(rm, tokenizer, train, {}, cfg.rm, seed=0, progress=False)


def test_loss_history_has_one_value_per_step(rm, tokenizer, cfg):
    train = [Comparison(f"Q: Hi {i}?\nA:", [" Hello.", " Go away."], [1, 2]) for i in range(20)]
    hist = train_rm(rm, tokenizer, train, {}, cfg.rm, seed=0, epochs=2, progress=False)
    assert len(hist["loss"]) == len(hist["step"]) == hist["step"][-1]


def test_save_load_round_trip(rm, tokenizer, tmp_path):
    rm.save(tmp_path / "rm")
    again = RewardModel.load(tmp_path / "rm").eval()
    enc = encode_comparisons(tokenizer, [Comparison("Hi\n", ["Hello.", "Go away."], [1, 2])], 64)
    torch.testing.assert_close(rm(enc["input_ids"], enc["attention_mask"]),
                               again(enc["input_ids"], enc["attention_mask"]))


def test_comparisons_from_judgements():
    j = Judgement("p1", "L01", ["a", "b"], [2, 1], [3, 5], [{}, {}], 0.0)
    (c,) = comparisons_from([j], {"p1": "prompt"})
    assert c.prompt == "prompt" and c.ranks == [2, 1]


def test_candidates_sampled_in_a_second_process_are_those_sampled_here(tokenizer, cfg, two_threads):
    from rlhf_lib.reward_model import sample_candidates
    from rlhf_lib.speed import Beside

    policies = [(bm.new_model(cfg.base, tokenizer, seed=0), 0.7), (bm.new_model(cfg.base, tokenizer, seed=1), 0.3)]
    args = (policies, tokenizer, ["Q: Where does Mira live?\nA:", "Hi", "You"], cfg.rm, 2, 4, 5)
    beside = Beside(sample_candidates, args, "cpu", cfg.speed)                    # a child process (2+ threads)
    assert beside.pool is not None
    beside = beside.result()
    here = Beside(sample_candidates, args, "cpu", replace(cfg.speed, side_by_side=1)).result()
    assert beside == here == sample_candidates(*args)
    comps, owners = here
    assert 2 <= min(len(c) for c in comps) and max(len(c) for c in comps) <= 4
    assert [len(c) for c in comps] == [len(o) for o in owners] and {o for row in owners for o in row} == {0, 1}


def test_the_ablation_trained_in_a_second_process_is_the_one_trained_here(tokenizer, cfg, tmp_path, monkeypatch,
                                                                          two_threads):
    """Notebook 03 trains the ablation beside the main reward model (`start_ablation`: on a CPU, a child process that
    loads the SFT model from the artifacts): it returns the runs that training here gives."""
    from rlhf_lib.reward_model import run_ablation, start_ablation
    from rlhf_lib.sft import model_dir

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))  # the child inherits it
    bm.save_base(bm.new_model(cfg.base, tokenizer, seed=0), tokenizer, model_dir(cfg.name))
    prompts = ["Q: Where does Mira live?\nA:", "Hi", "Q: Who lives in Oakridge?\nA:", "You"]
    train = [Comparison(p, [" Mira lives in Oakridge.", " You idiot.", " Oakridge."], [1, 3, 2]) for p in prompts]
    valid = {"valid_train": train[:2], "valid_heldout": train[2:]}
    small = replace(cfg, rm=replace(cfg.rm, ablation_prompts=3, epochs=1))
    beside = start_ablation(small, tokenizer, train, valid)
    assert beside.pool is not None  # a second process
    runs, here = beside.result(), run_ablation(small, tokenizer, train, valid, progress=False)
    assert set(runs) == set(here) == {"grouped", "pairs"}
    for name in runs:
        for key in ("loss", "train_acc", "valid_train_acc", "valid_heldout_acc"):
            assert runs[name][key] == pytest.approx(here[name][key], rel=1e-4, abs=1e-6), (name, key)


def test_candidates_name_the_policy_that_wrote_each(tokenizer, cfg):
    from rlhf_lib.reward_model import sample_candidates

    models = [bm.new_model(cfg.base, tokenizer, seed=0), bm.new_model(cfg.base, tokenizer, seed=1)]
    for only in (0, 1):
        weights = [float(i == only) for i in range(2)]
        comps, owners = sample_candidates(list(zip(models, weights)), tokenizer, ["Hi", "You"], cfg.rm, 2, 3, 5)
        assert [len(c) for c in comps] == [len(o) for o in owners]
        assert all(o == only for row in owners for o in row)


def test_a_label_given_with_the_widget_joins_the_training_rankings_of_both_paths(tmp_path, monkeypatch):
    """Notebook 03 and `python -m rlhf_lib.train rm` both build their training set with `rm_datasets`, which adds
    the reader's widget labels on training prompts (never on validation prompts) to the simulated rankings."""
    from types import SimpleNamespace

    from rlhf_lib import dataset
    from rlhf_lib.reward_model import rm_datasets
    from rlhf_lib.widgets import RankingItem, RankingWidget, human_labels_path

    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path))
    cfg = get_profile("smoke")
    recs = {"rm_train": [SimpleNamespace(prompt_id=p, prompt=f"prompt {p}") for p in ("t0", "t1")],
            "rm_valid": [SimpleNamespace(prompt_id="v0", prompt="prompt v0")], "sft_train": []}
    monkeypatch.setattr(dataset, "load_dataset", lambda profile, name: recs[name])
    judge = lambda pid: Judgement(prompt_id=pid, labeler_id="L01", completions=["a", "b", "c"], ranks=[1, 2, 3],
                                  likert=[6, 4, 2], flags=[], timestamp=1.0)
    data = {"train": [judge("t0")], "valid_train": [judge("v0")], "valid_heldout": [judge("v0")]}
    assert [c.prompt for c in rm_datasets(cfg, data)[0]] == ["prompt t0"]  # no widget labels yet

    widget = RankingWidget([RankingItem("t1", "prompt t1", ["x", "y", "z"]),
                            RankingItem("v0", "prompt v0", ["x", "y", "z"])], human_labels_path(cfg.name))
    for item_ranks in ([3, 1, 2], [1, 2, 3]):
        for i, r in enumerate(item_ranks):
            widget.set_rank(i, r)
        assert widget.submit() is not None, widget.message
    train, valid = rm_datasets(cfg, data)
    assert [(c.prompt, c.completions, c.ranks) for c in train] == [("prompt t0", ["a", "b", "c"], [1, 2, 3]),
                                                                   ("prompt t1", ["x", "y", "z"], [3, 1, 2])]
    assert [len(v) for v in valid.values()] == [1, 1]  # the label on a validation prompt stays out of training

