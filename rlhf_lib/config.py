"""Profiles: every knob of every notebook, in one place.

A profile is a tree of small dataclasses, one per stage (nanoGPT's `GPTConfig`, CleanRL's `Args`). Notebooks pick a
profile by name in their papermill `parameters` cell and override single fields by dotted name:

    cfg = get_profile("smoke", {"base.max_steps": 50})

Three profiles ship: `smoke` (CI: seconds per notebook on 2 CPU cores), `default` (a laptop CPU, offline, big enough
to show the paper's effects) and `gpt2` (the real GPT-2 from the Hugging Face hub, sized for one GPU).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import json
import typing
from dataclasses import dataclass, field
from typing import Any

STEPS = ("base", "data", "sft", "rm", "ppo", "ppo_ptx", "eval", "alternatives")
"""The pipeline's steps in order (the world track, `data.source="world"`); each writes
`artifacts/<profile>/<step>/metrics.json`."""

REAL_STEPS = ("base", "real")
"""The real-data track's steps (`data.source="real"`): the base model of notebook 00, then notebook 08 (SFT, two reward
models, PPO and PPO-ptx on public data, judged by a gold reward model)."""

REAL_STAGES = ("sft", "rm", "ppo", "eval")
"""The stages notebook 08 writes in the real-data track's own folder `artifacts/<run>-real/`
(`artifacts.real_run_name`), each with its `metrics.json`; `eval`'s, written last, marks the step "real" complete."""

SOURCES = ("world", "real")
"""Values of `data.source`."""


@dataclass
class WorldConfig:
    """The generated world and its text (notebook 00, `rlhf_lib.world`)."""

    seed: int = 0
    """Seed of the world and its corpus: same seed, same bytes."""
    n_people: int = 60
    """Number of people in the world."""
    n_places: int = 15
    """Number of towns and villages."""
    n_animals: int = 20
    """Number of animal species."""
    n_objects: int = 30
    """Number of objects."""
    n_misconceptions: int = 12
    """Facts that the corpus often states wrongly (tagged with the truth): TruthfulQA's raw material."""
    corpus_chars: int = 3_000_000
    """Approximate size of the pretraining corpus in characters."""
    heldout_fraction: float = 0.05
    """Fraction of documents held out of pretraining (perplexity, the alignment tax)."""


@dataclass
class TokenizerConfig:
    """Byte-level BPE trained on the corpus (GPT-2's algorithm, a smaller vocabulary)."""

    vocab_size: int = 4096
    """Largest vocabulary, special tokens included (training stops earlier when no pair occurs `min_frequency`
    times: the world's text needs about 2,300 tokens)."""
    min_frequency: int = 2
    """A merge must occur at least this often in the corpus."""


@dataclass
class BaseConfig:
    """The base language model and its pretraining (notebook 00, `rlhf_lib.base_model`)."""

    hub_model: str | None = None
    """Hugging Face hub name (e.g. "gpt2") to load instead of pretraining; None pretrains offline."""
    seed: int = 0
    """Seed of the initial weights and of the pretraining batches. It stays fixed when the pipeline repeats the
    training steps with other seeds (`--seeds`): the base model is given, as GPT-3 was for the paper."""
    shipped_weights: bool = True
    """Use the pretrained weights that ship in `data/pretrained/` when they were trained with exactly this config,
    seed and corpus (the way one downloads GPT-2 rather than pretraining it); False, or no match: pretrain here."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads per block."""
    n_embd: int = 192
    """Width of the residual stream."""
    block_size: int = 256
    """Context length in tokens (GPT-2's n_positions)."""
    batch_size: int = 16
    """Sequences per optimisation step."""
    lr: float = 2e-3
    """Peak learning rate (AdamW)."""
    min_lr: float = 2e-4
    """Learning rate at the end of the cosine schedule."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    max_steps: int = 2000
    """Optimisation steps (default profile: 8 passes over the corpus, 24 min on 2 CPU cores, the run whose weights
    ship in `data/pretrained/`; at 500 steps the model answered 29% of closed-book questions, at 1000 74%)."""
    weight_decay: float = 0.1
    """AdamW weight decay on matrices (not on biases, LayerNorms)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value."""
    dropout: float = 0.0
    """Dropout in the transformer (0: the corpus is large relative to the model)."""
    eval_every: int = 100
    """Measure held-out loss every this many steps."""
    eval_batches: int = 8
    """Batches in each held-out loss estimate during training."""
    checkpoint_every: int = 100
    """Write a resumable checkpoint every this many steps."""
    n_samples: int = 4
    """Samples shown after training."""
    sample_tokens: int = 60
    """New tokens per sample."""


@dataclass
class DataConfig:
    """The prompt dataset and its three datasets (notebook 01, `rlhf_lib.dataset`)."""

    scale: float = 0.1
    """Train sizes as a fraction of the paper's (SFT 12,725 / RM 33,207 / PPO 31,144 prompts, Table 6)."""
    valid_fraction: float = 0.1
    """Validation prompts per dataset, relative to its train size."""
    n_test: int = 400
    """Held-out test prompts (evaluation, notebook 06)."""
    raw_factor: float = 3.0
    """Simulated prompts per prompt needed: the rules remove many (duplicates, the per-user cap, PII)."""
    cap_per_user: int = 200
    """At most this many prompts per user ID (the paper's rule)."""
    dedup_prefix_chars: int = 80
    """Prompts whose first this many characters (normalised) agree are duplicates."""
    p_near_duplicate: float = 0.08
    """Chance that a user resubmits the previous prompt with a small edit at the end."""
    p_pii: float = 0.03
    """Chance that a user pastes an email, phone number or address into a prompt."""
    seed: int = 0
    """Seed of the simulated users and the splits."""
    real_sft: str | None = None
    """Hub name or local file of Alpaca/Dolly-style demonstrations (the gpt2 profile); None: simulated only."""
    real_sft_schema: str = "dolly"
    """Schema of `real_sft`: "alpaca" or "dolly"."""
    real_rm: str | None = None
    """Hub name or local file of HH-RLHF-style chosen/rejected pairs (K = 2 rankings); None: simulated only."""
    real_limit: int = 20_000
    """Rows read from each real dataset."""
    source: str = "world"
    """What the main job trains on: "world" (notebooks 01-07 on the generated world, judged by its gold utility) or
    "real" (notebook 08: SFT on `real_sft`, reward models on `real_rm`, PPO on its prompts, judged by a gold reward
    model; the sizes are `Profile.real`'s)."""


@dataclass
class LabelerConfig:
    """The simulated labelers (notebook 01, `rlhf_lib.labelers`)."""

    n_labelers: int = 40
    """Pool size (the paper hired about 40 contractors)."""
    n_heldout: int = 10
    """Labelers who write no training data and judge only in evaluation."""
    weight_spread: float = 0.35
    """Log-normal spread of personal weights around the pool's mean."""
    quirk_spread: float = 0.6
    """Spread of the length and courtesy quirks."""
    target_agreement_train: float = 0.726
    """Calibration target: the paper's agreement among training labelers."""
    target_agreement_heldout: float = 0.773
    """Calibration target: the paper's agreement among held-out labelers."""
    n_calibration_items: int = 300
    """Candidate sets used to calibrate the noise (half) and to measure agreement (the other half)."""
    k_min: int = 4
    """Fewest completions per ranking (the paper: 4 to 9)."""
    k_max: int = 9
    """Most completions per ranking."""
    flag_error: float = 0.05
    """Chance that a labeler sets a metadata flag wrongly."""
    seed: int = 0
    """Seed of the pool (and of the writers' carelessness)."""
    slip_scale: float = 1.0
    """How carelessly the training labelers write demonstrations (`rlhf_lib.demonstrators`): every slip rate is this
    times the writer's carelessness times the paper's SFT rate. 0: perfect writers (the template answer); 1: the
    rates set once from the paper's Figure 4 (frozen before PPO was measured); 2: twice as careless."""
    writer_spread: float = 1.0
    """Sigma of the writers' log-normal carelessness (mean 1): most write carefully, a few slip often."""


@dataclass
class SFTConfig:
    """Supervised fine-tuning on demonstrations (notebook 02, `rlhf_lib.sft`)."""

    epochs: int = 6
    """Passes over the demonstrations (the paper: 16; validation loss rises after about one)."""
    batch_size: int = 16
    """Examples per step."""
    lr: float = 1e-3
    """Peak learning rate."""
    min_lr: float = 1e-4
    """Learning rate at the end of the cosine schedule (the paper decays with a cosine)."""
    warmup_steps: int = 20
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay on matrices."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value."""
    max_len: int = 256
    """Longest prompt + response in tokens; longer prompts lose tokens on the left."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scale numerator (scale = alpha / r)."""
    n_eval_prompts: int = 150
    """Validation prompts sampled after each epoch to measure the checker axes and the gold utility."""
    max_new_tokens: int = 64
    """Longest sampled response."""
    temperature: float = 0.7
    """Sampling temperature for evaluation samples."""


@dataclass
class RMConfig:
    """The reward model and its comparison data (notebook 03, `rlhf_lib.reward_model`)."""

    max_prompts: int | None = 2400
    """Ranked prompts used for training (None: all of `rm_train`). Accuracy grows with them (notebook 03); sampling
    and ranking K answers for 2,400 prompts takes about 4 minutes on a laptop CPU."""
    max_valid_prompts: int = 200
    """Validation prompts, each ranked by a training and by a held-out labeler."""
    p_base_policy: float = 0.25
    """Share of completions sampled from the base model instead of SFT ("other policies" in the paper)."""
    temperature: float = 1.0
    """Sampling temperature of the completions to rank."""
    max_new_tokens: int = 48
    """Longest sampled completion."""
    epochs: int = 1
    """Passes over the rankings (the paper: 1; the RM overfits after that). The same here: on a dev split of `rm_train`
    more passes fit the training rankings better and the dev split no better (`experiments/rm_learning_rate.py
    --epochs 3`; rows in `experiments/results/rm_learning_rate.json`, printed in notebook 03)."""
    batch_size: int = 8
    """Prompts per step; each brings all its K completions."""
    lr: float = 1e-4
    """Peak learning rate (cosine decay to a tenth). Chosen on a dev split of `rm_train`, not on the validation
    rankings, with `experiments/rm_learning_rate.py` (rows in `experiments/results/rm_learning_rate.json`, printed in
    notebook 03): 3e-4 and 1e-4 lead, their difference within the spread between two seeds of the same setting."""
    warmup_steps: int = 10
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay on matrices."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value."""
    max_len: int = 192
    """Longest prompt + completion in tokens; longer prompts lose tokens on the left."""
    ablation: bool = True
    """Also train the paper's ablation: every pair as a separate data point, shuffled."""
    ablation_prompts: int = 200
    """Ranked prompts both sides of the ablation train on (pairs cost K-1 forward passes per completion)."""


@dataclass
class PPOConfig:
    """PPO against the reward model, with a per-token KL penalty and optional pretraining mix (notebooks 04, 05)."""

    steps: int = 30
    """Rollout batches (PPO iterations). Each samples `batch_size` episodes and updates on them. (Default profile:
    30 so that the five PPO runs of notebooks 04 and 05 fit the 30-minute laptop budget; 40 took 25% longer.)"""
    batch_size: int = 32
    """Episodes (prompt + sampled response) per rollout batch."""
    minibatch_size: int = 16
    """Episodes per gradient step."""
    ppo_epochs: int = 4
    """Passes over each rollout batch (Ziegler et al.: 4; the paper: 1, over 8 minibatches of 64 from a batch of 512,
    with 256k episodes in all: far more episodes than a laptop run gets, so we reuse each batch 4 times)."""
    lr: float = 5e-5
    """Policy learning rate (constant, Adam)."""
    value_lr: float = 1e-4
    """Value model learning rate."""
    beta: float = 0.02
    """KL penalty coefficient (the paper: 0.02)."""
    adaptive_kl: bool = False
    """Adapt beta to keep the KL near `target_kl` (Ziegler et al.) instead of the paper's fixed beta."""
    target_kl: float = 6.0
    """Adaptive controller's target KL per response, in nats."""
    kl_horizon: int = 10_000
    """Adaptive controller's horizon in episodes."""
    discount: float = 1.0
    """GAE's gamma (1: the bandit episode has no discounting)."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    clip: float = 0.2
    """PPO's policy ratio clip epsilon."""
    value_clip: float = 0.2
    """Clip of the value change per update."""
    grad_clip: float = 1.0
    """Clip the global gradient norm of each model."""
    whiten_advantages: bool = True
    """Normalise advantages per rollout batch to mean 0, std 1."""
    temperature: float = 1.0
    """Sampling temperature of rollouts (also used when scoring their log-probabilities)."""
    max_new_tokens: int = 48
    """Longest response."""
    missing_eos_penalty: float | None = 1.0
    """Subtracted from the RM score of a response that hit `max_new_tokens` without EOS (None: no penalty)."""
    ptx_coef: float = 0.0
    """The paper's gamma: weight of the pretraining log-likelihood (0 = plain PPO; the paper's PPO-ptx: 27.8)."""
    ptx_batch_size: int = 4
    """Pretraining windows per PPO gradient step."""
    ptx_block_size: int = 128
    """Tokens per pretraining window."""
    ema_decay: float = 0.992
    """Exponential moving average of the policy weights, per gradient step, used for evaluation (the paper)."""
    max_kl: float = 100.0
    """Stop with an error when the mean KL per response exceeds this many nats (a runaway policy)."""
    lora: bool = False
    """Train LoRA adapters on the policy; the reference is then the same model with the adapters disabled."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scale numerator."""
    checkpoint_every: int = 10
    """Write a resumable checkpoint every this many rollout batches."""
    eval_every: int = 10
    """Measure RM score, gold utility and KL on the evaluation prompts every this many rollout batches."""
    n_eval_prompts: int = 96
    """Validation prompts for the curves and the final comparison with SFT."""
    small_beta: float = 0.002
    """Notebook 04's second run: a small KL coefficient to show over-optimisation of the RM."""
    best_of_n: int = 16
    """Largest n of the best-of-n reference (n SFT samples, keep the one the RM likes best)."""
    big_beta: float = 0.1
    """Notebook 05: the "larger KL" alternative to the pretraining mix."""
    ptx_sweep: tuple[float, ...] = (4.0,)
    """Notebook 05: pretraining-mix coefficients of the gamma sweep (besides 0 and `ptx_coef_05`)."""
    ptx_coef_05: float = 1.0
    """Notebook 05's PPO-ptx model: the gamma used for the comparison with PPO and the larger beta."""
    nlp_items: int = 150
    """Questions per "public NLP" benchmark task (`rlhf_lib.nlp_tasks`)."""
    heldout_category: str | None = "other"
    """Prompts of this category never reach PPO (arithmetic and date comparisons: the analogue of the paper's code
    and non-English prompts, rare in its fine-tuning data); notebook 06 measures how PPO generalises to them."""


@dataclass
class DPOConfig:
    """Direct preference optimisation on the reward model's comparisons (notebook 07, `rlhf_lib.dpo`): the policy
    learns from the ranked pairs themselves, with no reward model and no sampling during training."""

    beta: float = 0.1
    """Strength of the implicit KL to the reference: the implicit reward is beta * log(pi / pi_ref). Rafailov et al.
    (2023) used 0.1 for most of their experiments; a smaller beta lets the policy move further from SFT."""
    lr: float = 5e-5
    """Peak learning rate (AdamW; cosine decay to `min_lr`). PPO's policy learning rate (`ppo.lr`), so that the two
    methods move the same SFT model with the same step size; not tuned for DPO."""
    min_lr: float = 5e-6
    """Learning rate at the end of the cosine schedule."""
    warmup_steps: int = 10
    """Linear warm-up steps."""
    batch_size: int = 16
    """Preference pairs per step (each pair: one chosen and one rejected sequence)."""
    epochs: int = 1
    """Passes over the pairs (1, like the reward model on the same rankings, which overfits after that)."""
    weight_decay: float = 0.0
    """AdamW weight decay on matrices."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value."""
    max_len: int = 192
    """Longest prompt + completion in tokens (the reward model's `rm.max_len`: the same comparisons); longer prompts
    lose tokens on the left."""
    max_prompts: int | None = 150
    """DPO trains on the pairs of the reward model's first this many training rankings (None: all of them, as the
    reward model). A ranking of K gives up to K(K-1)/2 pairs, two sequences each: the default profile's 2,400
    rankings are about 40,000 pairs, hours on a laptop CPU; 150 rankings are about 2,500 pairs, a few minutes."""


@dataclass
class AlternativesConfig:
    """Notebook 07 (`rlhf_lib.alternatives`): other ways to use the same preferences, on one frontier with PPO."""

    rs_prompts: int = 128
    """Rejection sampling: PPO's training prompts (`ppo_train`, the first this many) for which SFT samples
    `ppo.best_of_n` completions and keeps the reward model's favourite as a demonstration."""
    rs_epochs: int = 2
    """Rejection sampling: SFT's loop over the kept samples, this many passes (SFT's other settings)."""
    rs_lr: float = 3e-4
    """Rejection sampling: peak learning rate (cosine decay to a tenth). Below SFT's `sft.lr`, which trains the base
    model: here the SFT model itself is fine-tuned further, on samples it wrote. Not tuned."""
    round2_prompts: int = 300
    """Second round of RLHF: fresh prompts whose K samples of the PPO policy the training labelers rank. They are
    the `rm_train` prompts after the first `rm.max_prompts` (never ranked in round one)."""
    judged_best_of_n: int = 4
    """n of the best-of-n policy that the held-out labelers judge on notebook 06's test prompts (n SFT samples per
    prompt; notebook 04's curve goes up to `ppo.best_of_n`)."""
    dpo_evals: int = 3
    """Measurements of the DPO policy on the evaluation prompts during training (its curve on the frontier),
    besides the start."""
    frontier_kls: tuple[float, ...] = (1.0, 2.0, 5.0)
    """KL to SFT (nats) at which notebook 07 names the method with the highest gold utility."""


@dataclass
class RealConfig:
    """The real-data track (notebook 08, `rlhf_lib.real_track`, `data.source="real"`): sizes of each stage. The other
    settings are the world track's: `sft.*` (but `epochs`), `rm.*` (but `max_len`), `ppo.*` (but `steps`)."""

    sft_records: int = 1000
    """Demonstrations of `data.real_sft` SFT trains on (after the rules; `data.valid_fraction` of them, at most,
    held out for the validation loss)."""
    sft_epochs: int = 2
    """SFT's passes over them (Dolly's answers are long and varied; the world track's `sft.epochs` suits its
    short templated ones)."""
    rm_rows: int = 5000
    """Rows of `data.real_rm` read for the track (from its training split, and as many from its test split): the two
    halves and, from a local file, the held-out share are what survives the rules (`real_data.load_hh_rlhf`)."""
    rm_comparisons: int = 1000
    """At most this many comparisons train each reward model: the proxy on one half of the split, the gold on the
    other."""
    heldout_comparisons: int = 500
    """Held-out comparisons (HH-RLHF's test split, or `heldout_share` of a local file) for both reward models'
    pair accuracy."""
    heldout_share: float = 0.1
    """With a local `data.real_rm` file (no test split), the share of its prompts held out for accuracy and
    evaluation (chosen by a hash of each prompt id, never trained on)."""
    ppo_steps: int = 30
    """Rollout batches of each PPO run (PPO and PPO-ptx; `ppo.batch_size` episodes each)."""
    n_eval_prompts: int = 200
    """Held-out HH-RLHF prompts on which SFT, PPO and PPO-ptx are sampled and judged by the gold reward model."""
    max_prompt_tokens: int = 256
    """PPO and evaluation use only prompts of at most this many tokens (HH-RLHF dialogues run to thousands)."""
    max_len: int = 384
    """Longest prompt + answer in tokens for SFT and both reward models; longer prompts lose tokens on the left."""


@dataclass
class EvalConfig:
    """The paper's evaluation in miniature (notebook 06): the models compared and the probe sets."""

    n_test_prompts: int | None = None
    """Held-out test prompts judged by the held-out labelers (None: all of the test split)."""
    max_new_tokens: int = 48
    """Tokens sampled per answer; sampling uses the SFT evaluation temperature `sft.temperature`."""
    large_n_layer: int = 6
    """The larger base model (GPT-L), pretrained the same way on the same corpus: layers."""
    large_n_head: int = 8
    """GPT-L attention heads."""
    large_n_embd: int = 256
    """GPT-L width."""
    large_hub_model: str | None = None
    """Hub name of the larger base in the gpt2 profile (e.g. "gpt2-medium"); None: pretrain it here."""
    ft_items: int = 200
    """GPT-FT (the paper's FLAN/T0 baseline): fine-tuning items per "public NLP" task."""
    ft_epochs: int = 2
    """GPT-FT fine-tuning epochs."""
    n_probe: int = 40
    """Items per probe set (truthfulness, toxicity, bias, false premises, hedging, constraints per level)."""


@dataclass
class SpeedConfig:
    """Speed-ups (`rlhf_lib.speed`). All but the last two act on CUDA only, so the CPU path is plain fp32 whatever
    they say; the last two act on a CPU only."""

    bf16: bool = True
    """bf16 autocast in the training loops (weights, optimizer state and losses stay fp32)."""
    bf16_frozen: bool = True
    """The reference and reward models hold bf16 weights (they never train)."""
    tf32: bool = True
    """TF32 tensor-core matmuls for what stays fp32."""
    fused_adam: bool = True
    """The fused CUDA Adam/AdamW kernel."""
    static_cache: bool = True
    """PPO rollouts preallocate their KV cache (`generate(cache_implementation="static")`)."""
    compile: bool = False
    """`torch.compile` the trained models (pays off on long runs; the first step compiles for about a minute)."""
    cpu_pass_tokens: int | None = 1024
    """On a CPU, PPO and reward-model training run a minibatch as several forward passes of at most this many
    tokens (rows x longest row), rows sorted by length and each pass cut to its own longest row: the gradient is
    the minibatch's, the padding is not computed. None: one pass per minibatch (what a GPU prefers)."""
    side_by_side: int = 3
    """On a CPU, independent PPO runs of one notebook train in up to this many processes at once, each with an equal
    share of the cores (1: one after another, in this process). Same runs, sooner (`rlhf_lib.speed`)."""


@dataclass
class Profile:
    """Everything a run needs. `name` selects the artifacts folder `artifacts/<name>/`."""

    name: str = "default"
    """Profile name; also the artifacts sub-folder."""
    seed: int = 0
    """Seed of training from SFT on (model initialisation, data order, sampling); pretraining has `base.seed`."""
    device: str = "auto"
    """"auto" (CUDA when available, else CPU), "cpu" or "cuda"."""
    offline: bool = True
    """True: nothing is fetched from the network (the smoke and default profiles)."""
    world: WorldConfig = field(default_factory=WorldConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    base: BaseConfig = field(default_factory=BaseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    labelers: LabelerConfig = field(default_factory=LabelerConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rm: RMConfig = field(default_factory=RMConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    alternatives: AlternativesConfig = field(default_factory=AlternativesConfig)
    real: RealConfig = field(default_factory=RealConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _smoke() -> Profile:
    return Profile(
        name="smoke",
        world=WorldConfig(n_people=30, n_places=8, n_animals=10, n_objects=12, n_misconceptions=6,
                          corpus_chars=250_000, heldout_fraction=0.1),
        tokenizer=TokenizerConfig(vocab_size=1024),
        base=BaseConfig(n_layer=2, n_head=2, n_embd=64, block_size=128, batch_size=8, lr=3e-3, min_lr=3e-4,
                        warmup_steps=10, max_steps=120, eval_every=40, eval_batches=4, checkpoint_every=40,
                        n_samples=2, sample_tokens=30),
        data=DataConfig(scale=0.01, n_test=60),
        labelers=LabelerConfig(n_calibration_items=80),
        sft=SFTConfig(epochs=2, batch_size=8, max_len=128, n_eval_prompts=24, max_new_tokens=32),
        rm=RMConfig(max_prompts=120, max_valid_prompts=30, max_new_tokens=24, max_len=128, ablation_prompts=60),
        ppo=PPOConfig(steps=4, batch_size=8, minibatch_size=4, ppo_epochs=2, max_new_tokens=16, lr=1e-4,
                      checkpoint_every=2, eval_every=2, n_eval_prompts=8, best_of_n=4, ptx_batch_size=2,
                      ptx_block_size=64, ptx_sweep=(2.0,), nlp_items=10),
        dpo=DPOConfig(batch_size=4, max_len=128, warmup_steps=2, max_prompts=12),
        eval=EvalConfig(n_test_prompts=24, max_new_tokens=16, large_n_layer=3, large_n_head=2, large_n_embd=96,
                        ft_items=20, ft_epochs=1, n_probe=6),
        alternatives=AlternativesConfig(rs_prompts=16, rs_epochs=1, round2_prompts=12, dpo_evals=2),
    )


def _default() -> Profile:
    return Profile(name="default")


def _gpt2() -> Profile:
    # The real GPT-2 (124M) from the hub: n_layer/n_embd/... are then read from the checkpoint, not from here. It has
    # read the web, not this world, so notebook 00 continues pretraining it (and GPT-L, gpt2-medium, with the same
    # recipe) on the world's corpus. Sizing: the default world's training text is 800k GPT-2 tokens; 800 steps of
    # 8 x 1,024 tokens read it about 8 times (the default profile's model reads its 700k tokens about 12 times, and
    # after about 6 it answered 74% of closed-book questions). Batch 8, not 16, halves gpt2-medium's activation
    # memory. 6.6M tokens are 6 x 124M x 6.6M = 5e15 FLOPs for GPT-2 and 1.4e16 for gpt2-medium: minutes at tens of
    # TFLOP/s (arithmetic, not yet measured on a GPU). lr 1e-4, 20x below the default profile's from-scratch 2e-3,
    # continues a pretrained model without wiping what it knows; not tuned: base/metrics.json's heldout_ppl_before
    # and heldout_ppl show whether it learnt the world.
    return Profile(name="gpt2", offline=False,
                   base=BaseConfig(hub_model="gpt2", n_layer=12, n_head=12, n_embd=768, block_size=1024,
                                   batch_size=8, lr=1e-4, min_lr=1e-5, warmup_steps=40, max_steps=800,
                                   eval_every=100, eval_batches=4, checkpoint_every=200),
                   data=DataConfig(real_sft="databricks/databricks-dolly-15k", real_rm="Anthropic/hh-rlhf"),
                   eval=EvalConfig(large_hub_model="gpt2-medium"),
                   real=_gpt2_real())


def _gpt2_real() -> RealConfig:
    # The real-data track (`--set data.source=real`) on one GPU, sized by counting, not measured. Dolly has 15k
    # demonstrations, HH-RLHF 161k training comparisons and 8.5k test ones. SFT reads 6,000 demonstrations twice (12k
    # sequences of at most 512 tokens). All of HH-RLHF is read: the hub's copy comes one subset after another
    # (harmless-base first), so each part is sampled across it (`real_track.sample_by_prompt`). Each reward model
    # reads 20,000 comparisons of its half once (40k sequences; the gold one on gpt2-medium, 3x GPT-2's parameters):
    # as many for both, so that they differ by size and by data, not by count (in Gao et al. a 6B gold model
    # labelled the proxies' data; here both learn from people's labels, on disjoint halves); metrics.json counts
    # what each read. Each PPO run has 200 rollout batches of ppo.batch_size = 32: 6,400 episodes (the paper: 256k;
    # the world track's gpt2 profile: 960). 500 held-out prompts put the 95% interval of a win rate near one half at
    # about +-0.04 (1.96 x 0.5 / sqrt(500)), 2,000 held-out pairs that of an accuracy near 0.6 at about +-0.02.
    # Prompts over 512 tokens are left out of PPO and evaluation, so a rollout batch is at most 32 x (512 + 48)
    # tokens; SFT's and the reward models' sequences are cut to 512 tokens.
    return RealConfig(sft_records=6000, sft_epochs=2, rm_rows=170_000, rm_comparisons=20_000,
                      heldout_comparisons=2000, ppo_steps=200, n_eval_prompts=500, max_prompt_tokens=512,
                      max_len=512)


PROFILES = {"smoke": _smoke, "default": _default, "gpt2": _gpt2}


def default_profile_name() -> str:
    """The notebooks' default: `$RLHF_PROFILE`, else "default"."""
    return os.environ.get("RLHF_PROFILE", "default")


def get_profile(name: str | None = None, overrides: dict[str, Any] | None = None) -> Profile:
    """Return a fresh copy of profile `name` with `overrides` ({"base.max_steps": 50, ...}) applied.

    Raises ValueError naming the valid profiles or fields when a name is wrong.
    """
    name = name or default_profile_name()
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}. Valid profiles: {', '.join(PROFILES)}.")
    profile = PROFILES[name]()
    for key, value in (overrides or {}).items():
        _set_field(profile, key, value)
    check_source(profile.data)
    return profile


def check_source(data: DataConfig) -> None:
    """`data.source` is one of `SOURCES`; "real" needs both real datasets. Raises ValueError saying what to set."""
    if data.source not in SOURCES:
        raise ValueError(f"data.source must be one of {', '.join(repr(s) for s in SOURCES)}, got {data.source!r}: "
                         "\"world\" trains on the generated world (notebooks 01-07), \"real\" on public data "
                         "(notebook 08).")
    if data.source == "real":
        require_real_data(data)


def require_real_data(data: DataConfig) -> None:
    """The real-data track reads `data.real_sft` and `data.real_rm`; stop with the fields to set when one is None."""
    missing = [f"data.{name}" for name in ("real_sft", "real_rm") if not getattr(data, name)]
    if missing:
        raise ValueError(
            f"The real-data track (data.source='real', notebook 08) needs {' and '.join(missing)}: data.real_sft names "
            "Dolly- or Alpaca-style demonstrations (schema data.real_sft_schema), data.real_rm HH-RLHF-style "
            "chosen/rejected pairs, each a hub name or a local .json/.jsonl file. Set them, e.g. "
            "--set data.real_sft=/data/dolly.jsonl --set data.real_rm=/data/hh_rlhf.jsonl (the gpt2 profile names "
            "databricks/databricks-dolly-15k and Anthropic/hh-rlhf).")


def _set_field(profile: Profile, dotted: str, value: Any) -> None:
    obj: Any = profile
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(obj)]
        where = ".".join(parts[:depth]) or "the profile"
        if part not in names:
            raise ValueError(f"Unknown config field {dotted!r}: {where} has no field {part!r}. "
                             f"Valid fields of {where}: {', '.join(names)}.")
        if depth == len(parts) - 1:
            setattr(obj, part, _coerce(obj, part, value, dotted))
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ValueError(f"Config field {'.'.join(parts[:depth + 1])!r} is a value, not a group; "
                                 f"cannot set {dotted!r}.")


def _coerce(obj: Any, name: str, value: Any, dotted: str) -> Any:
    """Check `value` against the field's annotation (int -> float is allowed; groups cannot be replaced)."""
    hint = typing.get_type_hints(type(obj))[name]
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if any(dataclasses.is_dataclass(t) for t in allowed):
        raise ValueError(f"Config field {dotted!r} is a group; set one of its fields, e.g. '{dotted}.<field>'.")
    if value is None and type(None) in allowed:
        return None
    if typing.get_origin(hint) is tuple:  # e.g. tuple[float, ...]: papermill passes a list
        item = typing.get_args(hint)[0]
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in value):
            return tuple(item(v) for v in value)
        raise ValueError(f"Config field {dotted!r} expects a list of numbers, got {value!r}.")
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if any(isinstance(value, t) and not (t is int and isinstance(value, bool)) for t in allowed if t is not type(None)):
        return copy.deepcopy(value)
    names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise ValueError(f"Config field {dotted!r} expects {names}, got {value!r} ({type(value).__name__}).")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """`--set field=value` arguments as the notebooks' `overrides`: each value read as JSON (numbers, true, null,
    lists), else kept as a string; e.g. ["ppo.beta=0.05", "base.hub_model=/models/gpt2"]."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected field=value with a dotted field name, e.g. ppo.beta=0.05.")
        try:
            out[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[key.strip()] = text
    return out
