"""Train the small default model that ships inside ``llm_codecs``.

The script reproduces ``llm_codecs/models/default/`` from scratch: it trains a byte-level BPE
tokenizer and a small Llama-style causal language model on ``corpus/train/`` only, measures bits per
byte on ``corpus/valid/`` and writes a HuggingFace model directory.

Every input file is read as bytes, never in text mode, so CRLF line endings reach the model exactly
as they will reach the codec. Gutenberg books (all CRLF) are sampled both raw and converted to LF;
code, JSON and CSV are sampled mostly as-is and sometimes with the other line-ending convention.

Examples
--------
Reproduce the shipped model: the tokenizer on a CPU (a minute or two), then the model on one CUDA
GPU (about 5 minutes on an H200)::

    python training/train_default_model.py --steps 1 --prepare-only --seed 1234 \
        --out /tmp/tokenizer
    python training/train_default_model.py --tokenizer-from /tmp/tokenizer --device cuda \
        --bf16 --window 64 --batch 256 --lr 3e-3 --warmup 200 --eval-every 500 --seed 3 \
        --threads 4 --steps 6286 --out /tmp/default-model

``docs/default-model.md`` records the settings, the data mix and the results.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

REPO = Path(__file__).resolve().parent.parent
EOS = "<|endoftext|>"
KINDS = ("gutenberg", "code", "json", "csv")
# Prose dominates what the codec will see; structured kinds keep the model from being lost on them.
KIND_WEIGHTS = {"gutenberg": 0.70, "code": 0.12, "json": 0.10, "csv": 0.08}
# Probability of sampling the "other" line-ending variant of a document of each kind.
SWAP_PROB = {"gutenberg": 0.5, "code": 0.25, "json": 0.25, "csv": 0.25}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    argparse.Namespace
        The parsed options.
    """
    corpus = REPO.parent / "shared" / "corpus"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "llm_codecs" / "models" / "default")
    p.add_argument("--train-dir", type=Path, default=corpus / "train")
    p.add_argument("--valid-dir", type=Path, default=corpus / "valid")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (deterministic)")
    p.add_argument(
        "--minutes", type=float, default=None, help="calibrate --steps from the first steps' speed"
    )
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--init-from", type=Path, default=None,
        help="continue from this saved model and reuse its tokenizer (a second stage)",
    )
    p.add_argument(
        "--tokenizer-from", type=Path, default=None,
        help="reuse this saved tokenizer but start the model from random init",
    )
    p.add_argument(
        "--streams-cache", type=Path, default=None,
        help="an .npz of the tokenized training streams: read when it exists, else written",
    )
    p.add_argument(
        "--prepare-only", action="store_true",
        help="train or load the tokenizer, tokenize (and write --streams-cache), save the "
             "tokenizer to --out, then stop",
    )
    p.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    p.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast for the forward (CUDA runs)"
    )
    p.add_argument(
        "--window", type=int, default=None,
        help="attend to the last WINDOW tokens only (the codec's ring context); full causal "
             "attention when omitted",
    )
    # One thread: the shipped model used it (the CPU is shared, and float sums depend on it).
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=192)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=512)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--save-dtype", choices=("float32", "float16", "bfloat16"), default="float16")
    p.add_argument("--log", type=Path, default=Path("train_default_model.log"), help="JSON lines")
    args = p.parse_args(argv)
    if (args.steps is None) == (args.minutes is None):
        p.error("give exactly one of --steps and --minutes")
    return args


# ----------------------------------------------------------------------------- data


def tar_members(path: Path) -> list[bytes]:
    """Return the contents of the regular files in a tar archive, in archive order.

    Parameters
    ----------
    path : Path
        The tar file.

    Returns
    -------
    list of bytes
        One entry per member file; tar headers are dropped because the codec never sees them.
    """
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as tar:
        return [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]


def load_docs(train_dir: Path) -> dict[str, list[bytes]]:
    """Read the training corpus as bytes, grouped by kind.

    Parameters
    ----------
    train_dir : Path
        ``corpus/train`` with ``gutenberg/``, ``code/``, ``json/`` and ``csv/``.

    Returns
    -------
    dict
        Kind name to a list of documents (bytes, exactly as stored).
    """
    docs: dict[str, list[bytes]] = {}
    for kind in KINDS:
        files = sorted((train_dir / kind).iterdir())
        if kind == "code":
            docs[kind] = [m for f in files for m in tar_members(f)]
        else:
            docs[kind] = [f.read_bytes() for f in files]
    return docs


def to_lf(data: bytes) -> bytes:
    """Convert CRLF line endings to LF."""
    return data.replace(b"\r\n", b"\n")


def swap_line_endings(data: bytes) -> bytes:
    """Return the document in the other line-ending convention.

    Parameters
    ----------
    data : bytes
        A document; it counts as CRLF when most of its newlines are CRLF.

    Returns
    -------
    bytes
        LF version of a CRLF document, CRLF version of an LF document.
    """
    lf = to_lf(data)
    if data.count(b"\r\n") * 2 > data.count(b"\n"):
        return lf
    return lf.replace(b"\n", b"\r\n")


def split_chunks(data: bytes, size: int = 1 << 16) -> list[bytes]:
    """Split bytes after newlines into pieces of about ``size`` bytes.

    Splitting lets the Rust tokenizer work on both cores; cutting after a newline changes the
    tokenization only at a handful of places per megabyte, which does not matter for training.
    """
    out, start = [], 0
    while start < len(data):
        end = data.find(b"\n", start + size)
        end = len(data) if end < 0 else end + 1
        out.append(data[start:end])
        start = end
    return out


def as_text(data: bytes) -> str:
    """Decode bytes for the tokenizer (the corpus is UTF-8; odd bytes become U+FFFD)."""
    return data.decode("utf-8", "replace")


# ----------------------------------------------------------------------------- tokenizer


def tokenizer_texts(docs: dict[str, list[bytes]], rng: np.random.Generator) -> Iterator[str]:
    """Yield the text the BPE merges are learnt from.

    Every second 64 KiB chunk of every document is used, so the tokenizer sees all kinds; half of
    the Gutenberg chunks are LF and half CRLF, so CRLF runs such as ``"\\r\\n\\r\\n"`` get tokens.

    Parameters
    ----------
    docs : dict
        Training documents by kind.
    rng : numpy.random.Generator
        Seeded generator choosing the variant of each chunk.

    Yields
    ------
    str
        Chunks of training text.
    """
    for kind in KINDS:
        for doc in docs[kind]:
            for chunk in split_chunks(doc)[::2]:
                swap = rng.random() < SWAP_PROB[kind]
                yield as_text(swap_line_endings(chunk) if swap else chunk)


def train_tokenizer(
    docs: dict[str, list[bytes]], vocab_size: int, seed: int
) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE tokenizer.

    Parameters
    ----------
    docs : dict
        Training documents by kind.
    vocab_size : int
        Vocabulary size including the 256 byte symbols and the special token.
    seed : int
        Seed of the chunk-variant choice.

    Returns
    -------
    PreTrainedTokenizerFast
        The tokenizer; ``<|endoftext|>`` (id 0) is both bos and eos.
    """
    tok = Tokenizer(models.BPE())
    # No normalizer: the bytes must come back exactly.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_texts(docs, np.random.default_rng(seed)), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS)


def raw_tokenizer(tokenizer: PreTrainedTokenizerFast) -> Tokenizer:
    """Return the Rust tokenizer set to treat ``<|endoftext|>`` in the data as plain text."""
    tok = tokenizer.backend_tokenizer
    tok.encode_special_tokens = True
    return tok


def encode(tok: Tokenizer, data: bytes) -> np.ndarray:
    """Tokenize one document exactly (no chunking)."""
    ids = tok.encode(as_text(data), add_special_tokens=False).ids
    return np.asarray(ids, dtype=np.int32)


def encode_stream(tok: Tokenizer, docs: list[bytes], eos_id: int) -> np.ndarray:
    """Tokenize documents into one stream, each document preceded by ``eos_id``.

    Parameters
    ----------
    tok : tokenizers.Tokenizer
        The trained tokenizer.
    docs : list of bytes
        Documents.
    eos_id : int
        Separator id; it also marks a document start, as the codec's first token does.

    Returns
    -------
    numpy.ndarray
        int32 token ids.
    """
    parts = []
    for doc in docs:
        chunks = [as_text(c) for c in split_chunks(doc)]
        enc = tok.encode_batch_fast(chunks, add_special_tokens=False)
        parts.append(np.asarray([eos_id], dtype=np.int32))
        parts.extend(np.asarray(e.ids, dtype=np.int32) for e in enc)
    return np.concatenate(parts)


def build_streams(
    tok: Tokenizer, docs: dict[str, list[bytes]], eos_id: int
) -> dict[tuple[str, bool], np.ndarray]:
    """Tokenize every kind in its stored form and in the other line-ending convention.

    Returns
    -------
    dict
        ``(kind, swapped)`` to a token stream.
    """
    streams = {}
    for kind in KINDS:
        streams[kind, False] = encode_stream(tok, docs[kind], eos_id)
        swapped = [swap_line_endings(d) for d in docs[kind]]
        streams[kind, True] = encode_stream(tok, swapped, eos_id)
    return streams


def load_or_build_streams(
    tok: Tokenizer, docs: dict[str, list[bytes]], eos_id: int, cache: Path | None
) -> dict[tuple[str, bool], np.ndarray]:
    """:func:`build_streams`, read from or written to ``cache`` (an ``.npz``) when given.

    Runs that train side by side on one GPU share one tokenization this way, and start their
    step-time calibration together.
    """
    if cache is not None and cache.exists():
        with np.load(cache) as npz:
            return {(k, s): npz[f"{k}_{int(s)}"] for k in KINDS for s in (False, True)}
    streams = build_streams(tok, docs, eos_id)
    if cache is not None:
        np.savez(cache, **{f"{k}_{int(s)}": v for (k, s), v in streams.items()})
    return streams


def sample_batch(
    streams: dict[tuple[str, bool], np.ndarray], rng: np.random.Generator, batch: int, length: int
) -> torch.Tensor:
    """Draw ``batch`` random windows of ``length + 1`` tokens.

    Each window picks a kind by ``KIND_WEIGHTS`` and a line-ending variant by ``SWAP_PROB``.

    Returns
    -------
    torch.Tensor
        int64 tensor of shape ``(batch, length + 1)``.
    """
    kinds = rng.choice(len(KINDS), size=batch, p=[KIND_WEIGHTS[k] for k in KINDS])
    rows = []
    for k in kinds:
        kind = KINDS[k]
        stream = streams[kind, bool(rng.random() < SWAP_PROB[kind])]
        start = int(rng.integers(0, len(stream) - length - 1))
        rows.append(stream[start : start + length + 1])
    return torch.from_numpy(np.stack(rows).astype(np.int64))


# ----------------------------------------------------------------------------- model


def build_model(args: argparse.Namespace, vocab_size: int, eos_id: int) -> LlamaForCausalLM:
    """Create the randomly initialised model (seeded by ``torch.manual_seed`` beforehand).

    Returns
    -------
    LlamaForCausalLM
        Float32 model with tied input and output embeddings.
    """
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=args.d_model,
        intermediate_size=args.ffn,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=args.seq_len,
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        rms_norm_eps=1e-5,
    )
    config.dtype = "float32"
    return LlamaForCausalLM(config)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def window_logits(model: LlamaForCausalLM, ids: torch.Tensor, window: int) -> torch.Tensor:
    """Logits of a Llama model whose tokens attend to the last ``window`` positions only.

    The codec's lean forward keeps a ring of ``context`` keys per lane, so at coding time a token
    sees itself and the ``context - 1`` tokens before it, at absolute positions. Training with the
    same band makes the model good at exactly that. The arithmetic is ``LlamaForCausalLM``'s
    (RMSNorm modules, RoPE with ``rotate_half``, SwiGLU, tied head); with ``window`` at least the
    sequence length it equals the model's own forward.

    Parameters
    ----------
    model : LlamaForCausalLM
        The model; its modules are called, so autocast and autograd apply as usual.
    ids : torch.Tensor
        int64 ``(B, T)`` token ids, position 0 first.
    window : int
        Positions each token attends to, itself included.

    Returns
    -------
    torch.Tensor
        ``(B, T, V)`` logits.
    """
    cfg = model.config
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    theta = cfg.rope_parameters["rope_theta"]
    batch, length = ids.shape
    device = ids.device
    inv_freq = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    )
    freqs = torch.arange(length, device=device).float()[:, None] * inv_freq[None, :]
    angles = torch.cat((freqs, freqs), dim=-1)
    cos, sin = angles.cos(), angles.sin()
    pos = torch.arange(length, device=device)
    distance = pos[:, None] - pos[None, :]
    mask = (distance >= 0) & (distance < window)
    inner = model.model
    h = inner.embed_tokens(ids)
    for layer in inner.layers:
        attn = layer.self_attn
        x = layer.input_layernorm(h)
        q = attn.q_proj(x).view(batch, length, heads, head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(batch, length, kv_heads, head_dim).transpose(1, 2)
        v = attn.v_proj(x).view(batch, length, kv_heads, head_dim).transpose(1, 2)
        q = q * cos.to(q.dtype) + _rotate_half(q) * sin.to(q.dtype)
        k = k * cos.to(k.dtype) + _rotate_half(k) * sin.to(k.dtype)
        if kv_heads != heads:
            k = k.repeat_interleave(heads // kv_heads, dim=1)
            v = v.repeat_interleave(heads // kv_heads, dim=1)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        h = h + attn.o_proj(a.transpose(1, 2).reshape(batch, length, heads * head_dim))
        x = layer.post_attention_layernorm(h)
        mlp = layer.mlp
        h = h + mlp.down_proj(torch.nn.functional.silu(mlp.gate_proj(x)) * mlp.up_proj(x))
    return model.lm_head(inner.norm(h))


def forward_logits(model, ids: torch.Tensor, window: int | None, bf16: bool) -> torch.Tensor:
    """Float32 logits ``(B, T, V)``: the model's own forward, or :func:`window_logits`."""
    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(ids).logits if window is None else window_logits(model, ids, window)
    return logits.float()


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warmup then cosine decay to 10 % of ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac))))


def make_optimizer(model: torch.nn.Module, args: argparse.Namespace) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (norm gains are left alone)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    keep = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)


def train_step(model, opt, batch: torch.Tensor, lr: float, window: int | None = None,
               bf16: bool = False) -> float:
    """One optimizer step on a ``(B, T + 1)`` batch; returns the mean loss in nats/token."""
    for group in opt.param_groups:
        group["lr"] = lr
    logits = forward_logits(model, batch[:, :-1], window, bf16)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


# ----------------------------------------------------------------------------- evaluation


def valid_sets(valid_dir: Path, limit: int) -> dict[str, list[bytes]]:
    """Load the validation texts: Gutenberg raw (CRLF) and LF, and WikiText-2.

    Parameters
    ----------
    valid_dir : Path
        ``corpus/valid``.
    limit : int
        Keep only the first ``limit`` bytes of each file (the CPU budget is small).

    Returns
    -------
    dict
        Set name to its files; each file is evaluated separately (see ``bpb``).
    """
    books = [f.read_bytes()[:limit] for f in sorted((valid_dir / "gutenberg").iterdir())]
    wiki = (valid_dir / "wiki.valid.tokens").read_bytes()[:limit]
    # Structured files are large and repetitive: 64 KiB of each is enough for a choice.
    cap = min(limit, 1 << 16)
    code_like = [f.read_bytes()[:cap] for f in sorted((valid_dir / "json").iterdir())]
    code_like += [f.read_bytes()[:cap] for f in sorted((valid_dir / "csv").iterdir())]
    return {
        "gutenberg_crlf": books,
        "gutenberg_lf": [to_lf(b) for b in books],
        "wiki": [wiki],
        "json_csv": code_like,
    }


@torch.inference_mode()
def bits_of(model, ids: np.ndarray, ctx: int, eos_id: int, batch: int = 16,
            window: int | None = None) -> float:
    """Total code length in bits of a token sequence under teacher forcing.

    The sequence is cut into windows of ``ctx - 1`` tokens, each preceded by ``eos_id`` (as a
    codec block starts), so every token is counted once and predicted with up to ``ctx - 1``
    tokens of context, or ``window - 1`` when ``window`` is given (the codec's ring).
    """
    device = model.device
    n = ctx - 1
    windows = [ids[i : i + n] for i in range(0, len(ids), n)]
    total = 0.0
    for i in range(0, len(windows), batch):
        group = windows[i : i + batch]
        width = max(len(w) for w in group)
        x = np.full((len(group), width + 1), eos_id, dtype=np.int64)
        mask = np.zeros((len(group), width), dtype=bool)
        for r, w in enumerate(group):
            x[r, 1 : len(w) + 1] = w
            mask[r, : len(w)] = True
        xt = torch.from_numpy(x).to(device)
        logp = torch.log_softmax(forward_logits(model, xt[:, :-1], window, False), dim=-1)
        nll = -logp.gather(-1, xt[:, 1:, None])[..., 0]
        total += float(nll[torch.from_numpy(mask).to(device)].sum())
    return total / math.log(2)


def bpb(model, tok: Tokenizer, files: list[bytes], ctx: int, eos_id: int,
        window: int | None = None) -> float:
    """Bits per original byte over a list of files, each tokenized exactly."""
    bits = sum(bits_of(model, encode(tok, f), ctx, eos_id, window=window) for f in files)
    return bits / sum(len(f) for f in files)


def evaluate(model, tok: Tokenizer, sets: dict[str, list[bytes]], ctx: int, eos_id: int,
             window: int | None = None) -> dict:
    """Bits per byte of each validation set (attending to ``window`` tokens when given)."""
    model.eval()
    out = {
        name: round(bpb(model, tok, files, ctx, eos_id, window), 4)
        for name, files in sets.items()
    }
    model.train()
    return out


def bytes_per_token(tok: Tokenizer, files: list[bytes]) -> float:
    """Average original bytes per token."""
    return sum(len(f) for f in files) / sum(len(encode(tok, f)) for f in files)


@torch.inference_mode()
def step_throughput(model, width: int, steps: int = 256, reps: int = 3) -> float:
    """Tokens/s of the codec's inner loop: one token per lane per step with a KV cache.

    The best of ``reps`` runs is kept because the CPU is shared with other work.
    """
    model.eval()
    ids = torch.randint(0, model.config.vocab_size, (width, steps))
    best = math.inf
    for _ in range(reps):
        cache = DynamicCache(config=model.config)
        t0 = time.perf_counter()
        for t in range(steps):
            model(ids[:, t : t + 1], past_key_values=cache, use_cache=True)
        best = min(best, time.perf_counter() - t0)
    model.train()
    return width * steps / best


# ----------------------------------------------------------------------------- output


def save(model, tokenizer, out: Path, dtype: str) -> None:
    """Write the HuggingFace directory (weights cast to ``dtype``, config says float32)."""
    out.mkdir(parents=True, exist_ok=True)
    # A cast copy keeps the tie between embedding and head, so the matrix is stored once.
    copy.deepcopy(model).to(getattr(torch, dtype)).save_pretrained(out)
    # The codec runs in float32 whatever the stored precision.
    cfg = json.loads((out / "config.json").read_text())
    cfg["dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(out)


def log_line(path: Path, record: dict) -> None:
    """Append one JSON record to the log and echo it."""
    line = json.dumps(record)
    print(line, flush=True)
    with path.open("a") as f:
        f.write(line + "\n")


def next_batch(streams, rng: np.random.Generator, args: argparse.Namespace,
               eos_id: int) -> torch.Tensor:
    """The next training batch on ``args.device``.

    With ``--window`` every window starts with ``eos_id``, as each lane of a codec block does.
    """
    batch = sample_batch(streams, rng, args.batch, args.seq_len)
    if args.window is not None:
        batch[:, 0] = eos_id
    return batch.to(args.device)


def calibrate_steps(model, opt, streams, rng, args, budget_s: float,
                    eos_id: int) -> tuple[int, int]:
    """Time the first warmup steps and derive the step count that fits ``budget_s``.

    Only warmup steps are used, whose learning rate does not depend on the total, so a later run
    with ``--steps`` equal to the logged value reproduces this one exactly.

    Returns
    -------
    tuple of int
        Steps already done and the total number of steps.
    """
    probe, skip = min(30, args.warmup), 5
    for step in range(probe):
        if step == skip:
            # The first steps pay for allocator and kernel warm-up; do not time them.
            t0 = time.perf_counter()
        batch = next_batch(streams, rng, args, eos_id)
        train_step(model, opt, batch, lr_at(step, 1, args.warmup, args.lr), args.window,
                   args.bf16)
    per_step = (time.perf_counter() - t0) / (probe - skip)
    # Leave about a tenth of the budget for periodic evaluation and checkpoints.
    return probe, max(probe + 1, int(0.9 * budget_s / per_step))


def train(args: argparse.Namespace) -> None:
    """Run tokenizer training, model training, evaluation and export."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    log = args.log
    log.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    docs = load_docs(args.train_dir)
    if args.init_from is not None:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.init_from)
    elif args.tokenizer_from is not None:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.tokenizer_from)
    else:
        tokenizer = train_tokenizer(docs, args.vocab_size, args.seed)
    tok = raw_tokenizer(tokenizer)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    streams = load_or_build_streams(tok, docs, eos_id, args.streams_cache)
    sizes = {f"{k}{'_swapped' if s else ''}": len(v) for (k, s), v in streams.items()}
    log_line(log, {"event": "data", "tokens": sizes, "s": round(time.perf_counter() - t_start)})
    if args.prepare_only:
        # The tokenizer alone is a product of this stage (a GPU run reuses it).
        tokenizer.save_pretrained(args.out)
        return

    if args.init_from is None:
        model = build_model(args, len(tokenizer), eos_id)
    else:
        # Stored weights are float16; training continues in float32 with a fresh optimizer.
        model = LlamaForCausalLM.from_pretrained(args.init_from, dtype=torch.float32)
    model.to(args.device).train()
    opt = make_optimizer(model, args)
    rng = np.random.default_rng(args.seed)
    quick = valid_sets(args.valid_dir, limit=1 << 14)
    t_train = time.perf_counter()
    done, total = 0, args.steps
    if total is None:
        done, total = calibrate_steps(model, opt, streams, rng, args, args.minutes * 60, eos_id)
    log_line(log, {"event": "start", "steps": total, "params": model.num_parameters()})
    for step in range(done, total):
        batch = next_batch(streams, rng, args, eos_id)
        loss = train_step(model, opt, batch, lr_at(step, total, args.warmup, args.lr),
                          args.window, args.bf16)
        if step % 20 == 0:
            elapsed = time.perf_counter() - t_train
            log_line(log, {"step": step, "loss": round(loss, 4), "s": round(elapsed)})
        if (step + 1) % args.eval_every == 0 or step + 1 == total:
            ev = evaluate(model, tok, quick, args.seq_len, eos_id, args.window)
            log_line(log, {"step": step + 1, "quick_valid_bpb": ev})
            save(model, tokenizer, args.out, args.save_dtype)
    train_s = time.perf_counter() - t_train
    log_line(log, {"event": "trained", "steps": total, "train_s": round(train_s)})
    report(args, tokenizer, log, eos_id, train_s)


def report(args: argparse.Namespace, tokenizer, log: Path, eos_id: int, train_s: float) -> None:
    """Reload the saved model as the codec will (float32) and log bpb and step throughput."""
    model = LlamaForCausalLM.from_pretrained(args.out, dtype=torch.float32).to(args.device)
    tok = raw_tokenizer(tokenizer)
    sets = valid_sets(args.valid_dir, limit=1 << 18)
    ev = evaluate(model, tok, sets, args.seq_len, eos_id, args.window)
    bpt = {k: round(bytes_per_token(tok, v), 3) for k, v in sets.items()}
    # The codec's speed that matters is the CPU's; a GPU run's throughput says nothing of it.
    speed = {}
    if args.device == "cpu":
        speed = {f"W{w}": round(step_throughput(model, w)) for w in (32, 64)}
    size = sum(f.stat().st_size for f in args.out.iterdir())
    log_line(
        log,
        {
            "event": "final",
            "valid_bpb": ev,
            "bytes_per_token": bpt,
            "tokens_per_s": speed,
            "params": model.num_parameters(),
            "train_s": round(train_s),
            "size_bytes": size,
        },
    )


if __name__ == "__main__":
    train(parse_args())
