"""GPT-2's real tokenizer without the Hugging Face hub: rebuilt from the `gpt2.tiktoken` file of a PyPI package.

The `gpt2` profile needs GPT-2's BPE, and the hub may be out of reach (this project's offline rehearsal). OpenAI's
`openai-whisper` source distribution on PyPI ships `whisper/assets/gpt2.tiktoken`: one line per token, its bytes in
base64 and its rank, and the rank *is* GPT-2's token id. That file has no merge list, which the `tokenizers` BPE model
needs, so `recover_merges` rebuilds it from the ranks; `reference_encode` is BPE straight from the ranks, the ground
truth the rebuilt tokenizer is checked against before it is saved.

    python -m rlhf_lib.gpt2_tokenizer OUT_DIR     # finds or downloads the file, writes a GPT2TokenizerFast folder

We do not install `openai-whisper` (it pulls numba and triton); `pip download --no-deps` of its ~800 kB sdist and
reading one member of the tarball is enough.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import regex
from transformers import GPT2TokenizerFast

from rlhf_lib.artifacts import atomic_path, save_atomic

EOS = "<|endoftext|>"
EOS_ID = 50256
"""GPT-2's only special token comes right after the 50,256 BPE tokens of the file."""

WHISPER_SDIST = "openai-whisper==20250625"
MEMBER = "whisper/assets/gpt2.tiktoken"
SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
"""Digest of GPT-2's `gpt2.tiktoken`: a truncated download or another vocabulary is refused, not converted."""

GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
"""GPT-2's pre-tokenizer: BPE never merges across these pieces (the same regex as `pre_tokenizers.ByteLevel`)."""

SAMPLE_TEXTS = ["Hello world", " the", "I'm sure they'll say it's fine.", "  indented\n\n\tcode = f(x) + 42;",
                "naïve café, Zürich: 3.14159 — “quotes”", "日本語のテキスト 😀👍🏽", "x" * 40 + " " * 5 + "end"]
"""Texts every conversion must encode exactly as `reference_encode` does before its folder is written."""


class TiktokenUnavailable(OSError):
    """`gpt2.tiktoken` is neither installed, nor cached, nor downloadable here."""


# ---------------------------------------------------------------------------------------------------------------
# Reading the ranks, recovering the merges


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character: vocab.json and merges.txt store tokens as text, and
    bytes such as space or newline would be invisible or split the merge lines. Printable Latin-1 bytes map to
    themselves; the other 68 take the characters from U+0100 on, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    moved = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(moved)}}


def as_text(token: bytes) -> str:
    """A token's bytes in GPT-2's printable form (`byte_to_unicode`)."""
    table = byte_to_unicode()
    return "".join(table[b] for b in token)


def read_ranks(path: Path | str) -> dict[bytes, int]:
    """`{token bytes: rank}` from a tiktoken file (lines `base64 rank`)."""
    ranks = {}
    for line in Path(path).read_text(encoding="ascii").splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def bpe_parts(data: bytes, ranks: dict[bytes, int], below: int | None = None) -> list[bytes]:
    """Byte-level BPE as tiktoken runs it: merge the adjacent pair whose concatenation has the lowest rank, until
    no pair is a token (or, with `below`, none ranks below it)."""
    parts = [bytes([b]) for b in data]
    while len(parts) > 1:
        best, best_rank = -1, below if below is not None else sys.maxsize
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            break
        parts[best: best + 2] = [parts[best] + parts[best + 1]]
    return parts


def recover_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge list, in rank order, that makes `tokenizers`' BPE reproduce the ranks.

    A token of rank r is made by the last merge BPE does on its own bytes when only tokens ranked below r exist:
    that leaves exactly two parts, and that pair is the merge (not just any split into two known tokens, which BPE
    might never reach)."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        parts = bpe_parts(token, ranks, below=rank)
        if len(parts) != 2:
            raise ValueError(f"Token {token!r} (rank {rank}) is not one merge of two lower-ranked tokens: {parts}")
        merges.append((parts[0], parts[1]))
    return merges


def reference_encode(text: str, ranks: dict[bytes, int]) -> list[int]:
    """GPT-2 token ids of `text` straight from the ranks (no special tokens): the ground truth for the converter."""
    return [ranks[part] for piece in GPT2_PATTERN.findall(text) for part in bpe_parts(piece.encode("utf-8"), ranks)]


# ---------------------------------------------------------------------------------------------------------------
# The transformers tokenizer


def build_tokenizer(ranks: dict[bytes, int], merges: list[tuple[bytes, bytes]]) -> GPT2TokenizerFast:
    """GPT-2's tokenizer (BPE from the ranks and their `recover_merges`, `<|endoftext|>` = 50256, 1,024-token context)
    as the hub ships it: no PAD, which `rlhf_lib.tokenizer.ensure_pad_token` adds."""
    if len(ranks) != EOS_ID or sorted(ranks.values()) != list(range(EOS_ID)):
        raise ValueError(f"Expected GPT-2's ranks 0..{EOS_ID - 1}; got {len(ranks)} tokens.")
    vocab = {as_text(token): rank for token, rank in ranks.items()} | {EOS: EOS_ID}
    pairs = [(as_text(a), as_text(b)) for a, b in merges]
    return GPT2TokenizerFast(vocab=vocab, merges=pairs, model_max_length=1024)


def mismatches(tokenizer: GPT2TokenizerFast, ranks: dict[bytes, int], texts: Iterable[str]) -> list[str]:
    """The texts that `tokenizer` encodes differently from `reference_encode`, or does not decode back."""
    bad = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids != reference_encode(text, ranks) or tokenizer.decode(ids) != text:
            bad.append(text)
    return bad


def gpt2_tokenizer_from_tiktoken(path_to_gpt2_tiktoken: Path | str, out_dir: Path | str) -> Path:
    """Write GPT-2's tokenizer folder (tokenizer.json, vocab.json, merges.txt, config) to `out_dir`, atomically;
    `AutoTokenizer.from_pretrained(out_dir)` loads it. Refuses to write a tokenizer that disagrees with the ranks."""
    ranks = read_ranks(path_to_gpt2_tiktoken)
    merges = recover_merges(ranks)
    tokenizer = build_tokenizer(ranks, merges)
    bad = mismatches(tokenizer, ranks, SAMPLE_TEXTS)
    if bad:
        raise ValueError(f"The rebuilt GPT-2 tokenizer encodes {bad!r} unlike BPE over the ranks.")

    def _save(tmp: Path) -> None:
        tokenizer.save_pretrained(tmp)
        vocab = tokenizer.get_vocab()  # the files older loaders and other tools read
        (tmp / "vocab.json").write_text(json.dumps(dict(sorted(vocab.items(), key=lambda kv: kv[1])),
                                                   ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2"] + [f"{as_text(a)} {as_text(b)}" for a, b in merges]
        (tmp / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return save_atomic(Path(out_dir), _save)


# ---------------------------------------------------------------------------------------------------------------
# Finding gpt2.tiktoken


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/rlhf_lib` (default `~/.cache/rlhf_lib`): outside the repository, shared by every checkout."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rlhf_lib"


def _is_gpt2(path: Path) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def _installed_whisper() -> Path | None:
    """The file inside an installed `whisper` package, found without importing it (its import loads torch/numba)."""
    spec = importlib.util.find_spec("whisper")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / "gpt2.tiktoken"
    return path if _is_gpt2(path) else None


def _download(target: Path) -> Path:
    """`pip download` the whisper sdist (no dependencies, no wheel) and copy its `gpt2.tiktoken` to `target`."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", WHISPER_SDIST, "--no-deps", "--no-binary", ":all:",
               "-d", tmp, "--quiet"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if run.returncode != 0 or not sdists:
            raise TiktokenUnavailable(f"`{' '.join(cmd[2:])}` failed: {(run.stderr or run.stdout).strip()[-500:]}")
        with tarfile.open(sdists[0]) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("/" + MEMBER)), None)
            data = tar.extractfile(member).read() if member is not None and member.isfile() else None
    if data is None or hashlib.sha256(data).hexdigest() != SHA256:
        raise TiktokenUnavailable(f"{sdists[0].name} has no {MEMBER} with GPT-2's vocabulary (sha256 {SHA256}).")
    with atomic_path(target) as out:
        out.write_bytes(data)
    return target


def find_gpt2_tiktoken(cache: Path | None = None, download: bool = True) -> Path:
    """GPT-2's `gpt2.tiktoken`: from an installed `whisper` package, else the cache (`cache_dir()`), else downloaded
    once from PyPI into the cache. Raises `TiktokenUnavailable`, saying what to install, when all three fail."""
    installed = _installed_whisper()
    if installed is not None:
        return installed
    cached = (cache or cache_dir()) / "gpt2.tiktoken"
    if _is_gpt2(cached):
        return cached
    try:
        if not download:
            raise TiktokenUnavailable("not installed nor cached, and download=False")
        return _download(cached)
    except (OSError, subprocess.SubprocessError) as err:
        raise TiktokenUnavailable(
            f"GPT-2's tokenizer file could not be found or downloaded ({err}). Either run `pip download "
            f"{WHISPER_SDIST} --no-deps --no-binary :all:` somewhere with PyPI access and copy {MEMBER} from the "
            f"tarball to {cached}, or `pip install {WHISPER_SDIST}` (heavy: it pulls numba and triton).") from err


def main(argv: list[str] | None = None) -> None:
    """`python -m rlhf_lib.gpt2_tokenizer OUT_DIR`: GPT-2's tokenizer folder for the offline `gpt2` rehearsal."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m rlhf_lib.gpt2_tokenizer OUT_DIR")
    print(gpt2_tokenizer_from_tiktoken(find_gpt2_tiktoken(), args[0]))


if __name__ == "__main__":
    main()
