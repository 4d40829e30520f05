"""The portable engine on a GPU: throughput, the CPU/GPU frame check and a profile, one command.

Issue 12's GPU measure, for a machine with CUDA (``--device cpu`` runs the same steps on the
CPU, to try the script where no GPU is lent). For each model - a random-weight Llama with
SmolLM2-135M's shape (576 wide, 30 layers, 9 heads, 3 KV heads, 49,152 logits; the embedded
model's tokenizer, built in a temporary directory) and the embedded default model - it:

1. compresses and decompresses ``--bytes`` of validation text with ``device=--device`` and
   ``fallback=False`` (the model codes every block, even the random one; defaults otherwise),
   after a warm-up block, and prints KB/s both ways;
2. compresses the same data on the CPU and checks that every coded block is byte-identical to
   the device's (the headers differ only in the recorded ``device``) and that each frame
   decodes on the other device;
3. profiles one block's decode on the device (``cProfile``) and prints the shares of the model
   forward, the tables (in-block models) and the rANS coder.

Usage::

    python benchmarks/gpu.py                       # CUDA, 1 MiB, both models
    python benchmarks/gpu.py --device cpu --bytes 8000 --models default

Prints Markdown.
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import torch

import llm_codecs
from llm_codecs.frame import FrameReader

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT.parent / "shared" / "corpus" / "valid" / "gutenberg"
DEFAULT_MODEL = ROOT / "llm_codecs" / "models" / "default"

#: Where one decoded block's time goes: substrings of profiled function names.
SHARES = {
    "model": ("portable/", "_int_mm", "llama_step", "modeling_"),
    "tables": ("_quantize_kernel", "_match_kernel", "_successor_kernel", "cache_mix"),
    "coder": ("rans",),
}


def smollm2_shaped(directory: Path) -> str:
    """Save a random-weight Llama with SmolLM2-135M's shape and the default tokenizer."""
    import transformers

    config = transformers.LlamaConfig(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, head_dim=64, vocab_size=49152, max_position_embeddings=8192,
        rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(135)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(DEFAULT_MODEL / name, directory / name)
    return str(directory)


def _payloads(frame: bytes) -> list[bytes]:
    reader = FrameReader(frame)
    return [reader._read_at(b.offset, b.compressed_size) for b in reader.blocks]


def _profile_block(frame: bytes, size: int) -> dict[str, float]:
    profile = cProfile.Profile()
    profile.enable()
    llm_codecs.decompress(frame, 0, size)
    profile.disable()
    stats = pstats.Stats(profile).stats
    total = sum(tt for (_, _, tt, _, _) in stats.values())
    shares = dict.fromkeys(SHARES, 0.0)
    for (path, _, name), (_, _, tt, _, _) in stats.items():
        where = f"{path}:{name}"
        for part, keys in SHARES.items():
            if any(k in where for k in keys):
                shares[part] += tt
                break
    return {"total_s": total, **{k: v / total for k, v in shares.items()}}


def measure(model: str, data: bytes, device: str) -> dict:
    """Every figure for one model (see the module docstring)."""
    kwargs = {"model": model, "fallback": False}
    llm_codecs.decompress(llm_codecs.compress(data[:4096], "llm", device=device, **kwargs))
    t0 = time.perf_counter()
    frame = llm_codecs.compress(data, "llm", device=device, **kwargs)
    t1 = time.perf_counter()
    back = llm_codecs.decompress(frame)
    t2 = time.perf_counter()
    cpu_frame = llm_codecs.compress(data, "llm", device="cpu", **kwargs)
    identical = _payloads(frame) == _payloads(cpu_frame)
    crossed = (FrameReader(frame, codec=llm_codecs.codecs.make_codec(
                   "llm", device="cpu", **kwargs)).read() == data
               and FrameReader(cpu_frame, codec=llm_codecs.codecs.make_codec(
                   "llm", device=device, **kwargs)).read() == data)
    block = min(len(data), 65536)
    profile = _profile_block(frame, block)
    return {"ok": back == data, "bpb": 8 * len(frame) / len(data),
            "compress_kbs": len(data) / 1024 / (t1 - t0),
            "decompress_kbs": len(data) / 1024 / (t2 - t1),
            "identical": identical and crossed, "profile": profile}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bytes", type=int, default=1 << 20)
    parser.add_argument("--models", nargs="+", default=["smollm2-shaped", "default"])
    args = parser.parse_args()
    books = ("pg2814.txt", "pg36.txt", "pg84.txt", "pg1342.txt")
    data = b"".join((VALID / b).read_bytes() for b in books)[: args.bytes]
    name = (torch.cuda.get_device_name() if args.device.startswith("cuda")
            else platform.processor() or platform.machine())
    print(f"device {args.device} ({name}), torch {torch.__version__}, "
          f"{len(data):,} bytes of valid/gutenberg ({', '.join(books)})\n")
    print("| model | bits per byte | KB/s compress | KB/s decompress | blocks = CPU's, "
          "decode on both | one block decoded, s | model | tables | coder |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            path = smollm2_shaped(Path(tmp) / "smollm2") if model == "smollm2-shaped" else model
            r = measure(path, data, args.device)
            if not r["ok"]:
                raise SystemExit(f"{model}: round trip failed")
            p = r["profile"]
            print(f"| {model} | {r['bpb']:.4f} | {r['compress_kbs']:.1f} | "
                  f"{r['decompress_kbs']:.1f} | {'yes' if r['identical'] else 'NO'} | "
                  f"{p['total_s']:.2f} | {p['model']:.0%} | {p['tables']:.0%} | "
                  f"{p['coder']:.0%} |")


if __name__ == "__main__":
    main()
