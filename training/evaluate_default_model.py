"""Measure a trained default model: bits per byte on files and the codec's step throughput.

Examples
--------
::

    python training/evaluate_default_model.py --files ../shared/corpus/valid/gutenberg/pg84.txt \\
        --limit 65536 --widths 32 64 --threads 2 --codec
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from train_default_model import (
    REPO,
    bits_of,
    encode,
    raw_tokenizer,
    step_throughput,
    to_lf,
)
from transformers import AutoModelForCausalLM, AutoTokenizer


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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=REPO / "llm_codecs" / "models" / "default")
    p.add_argument("--files", type=Path, nargs="*", default=[])
    p.add_argument("--limit", type=int, default=1 << 16, help="bytes of each file to score")
    p.add_argument("--ctx", type=int, default=512, help="teacher-forcing window in tokens")
    p.add_argument(
        "--window", type=int, default=64,
        help="tokens each token attends to (the codec's context); 0 for full attention",
    )
    p.add_argument("--widths", type=int, nargs="*", default=[32, 64])
    p.add_argument("--steps", type=int, default=256, help="decode steps per throughput run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--codec", action="store_true",
        help="also code each file's first --limit bytes as one block with the llm codec "
             "(no LZ77 fallback), with and without the in-block cache",
    )
    return p.parse_args(argv)


def codec_report(model_dir: Path, path: Path, limit: int) -> dict:
    """Bits per byte of the llm codec on one block, with and without the in-block cache."""
    from llm_codecs.codecs import make_codec

    data = path.read_bytes()[:limit]
    out = {"file": str(path), "bytes": len(data)}
    for cache in (False, True):
        codec = make_codec("llm", model=str(model_dir), fallback=False, cache=cache)
        payload = codec.encode_block(data)
        out[f"codec_bpb_cache_{str(cache).lower()}"] = round(8 * len(payload) / len(data), 4)
    return out


def file_report(model, tok, path: Path, limit: int, ctx: int, eos_id: int,
                window: int | None = None) -> dict:
    """Bits per byte and bytes per token of a file's first ``limit`` bytes, raw and as LF."""
    raw = path.read_bytes()[:limit]
    out = {"file": str(path), "bytes": len(raw)}
    for name, data in (("raw", raw), ("lf", to_lf(raw))):
        ids = encode(tok, data)
        out[f"{name}_bpb"] = round(bits_of(model, ids, ctx, eos_id, window=window) / len(data), 4)
        out[f"{name}_bytes_per_token"] = round(len(data) / len(ids), 3)
    return out


def main(argv: list[str] | None = None) -> None:
    """Print one JSON line per file and one for the throughput."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    tok = raw_tokenizer(tokenizer)
    eos_id = tokenizer.eos_token_id
    for path in args.files:
        window = args.window or None
        print(json.dumps(file_report(model, tok, path, args.limit, args.ctx, eos_id, window)))
        if args.codec:
            print(json.dumps(codec_report(args.model, path, args.limit)))
    speed = {f"W{w}": round(step_throughput(model, w, args.steps)) for w in args.widths}
    print(json.dumps({"threads": args.threads, "tokens_per_s": speed}))


if __name__ == "__main__":
    main()
