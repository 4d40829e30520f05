"""What each portable engine version costs the model's predictions: bits per token, in one run.

Teacher-forced cross-entropy of the embedded default model on a file's first ``--bytes`` bytes,
cut into ``--lanes`` lanes with the codec's 64-slot window, for the float lean forward and each
portable engine version (``llm_codecs.portable.ENGINES``): the model alone, without the codec's
in-block models, so the engines' arithmetic is all that differs.

Usage::

    python benchmarks/engine_bits.py                      # valid/gutenberg/pg36.txt
    python benchmarks/engine_bits.py --bytes 30000 PATH

FILE defaults to validation data. Prints Markdown.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from llm_codecs.models.llama_step import LlamaStep
from llm_codecs.models.loading import load_model
from llm_codecs.portable import ENGINES, integer_step

VALID = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "valid"
SLOTS = 64


def _logits(step, grid: torch.Tensor) -> torch.Tensor:
    return torch.stack([step.step(grid[:, t], t, slot=t % SLOTS, filled=min(t + 1, SLOTS))
                        for t in range(grid.shape[1])], dim=1)


def _bits_per_token(logits: torch.Tensor, grid: torch.Tensor) -> float:
    flat = logits[:, :-1].reshape(-1, logits.shape[-1]).double()
    loss = torch.nn.functional.cross_entropy(flat, grid[:, 1:].reshape(-1))
    return float(loss) / math.log(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default=str(VALID / "gutenberg" / "pg36.txt"))
    parser.add_argument("--bytes", type=int, default=8000)
    parser.add_argument("--lanes", type=int, default=4)
    args = parser.parse_args()
    loaded = load_model("default")
    ids = loaded.tokenizer.encode(Path(args.file).read_bytes()[: args.bytes])
    steps = len(ids) // args.lanes
    grid = torch.from_numpy(np.asarray(ids[: args.lanes * steps], dtype=np.int64)
                            .reshape(args.lanes, steps))
    with torch.inference_mode():
        rows = [("float (lean forward)",
                 _bits_per_token(_logits(LlamaStep(loaded.model, args.lanes, SLOTS,
                                                   positions=steps), grid), grid))]
        for engine in ENGINES:
            step = integer_step(loaded.model, args.lanes, SLOTS, steps, engine=engine)
            rows.append((f"portable `{engine}`", _bits_per_token(_logits(step, grid), grid)))
    print(f"`{args.file}`, first {args.bytes:,} bytes: {args.lanes} lanes x {steps} tokens, "
          f"{SLOTS}-slot window, the default model alone\n")
    print("| forward | bits per token | against the float forward |")
    print("|---|---|---|")
    for name, bits in rows:
        print(f"| {name} | {bits:.4f} | {bits / rows[0][1] - 1:+.2%} |")


if __name__ == "__main__":
    main()
