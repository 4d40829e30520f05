"""The encoder's prefill against the position-by-position forward, in one process.

Encodes one 64 KiB block of text with the ``llm`` codec's defaults (one torch thread, no
fallback, no probe) twice: with :class:`~llm_codecs.codecs.llm_schedule.PrefillSchedule` (the
encoder's default) and with the step-by-step schedule the decoder runs; checks the payloads are
the same bytes, then decodes. Prints the three times, the fastest of ``--repeat``.

Usage::

    python benchmarks/prefill.py [FILE] [--repeat N]

FILE defaults to ``valid/gutenberg/pg36.txt`` (validation data).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from llm_codecs.codecs import make_codec
from llm_codecs.codecs.llm import LanguageModelCodec

VALID = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "valid"


def _fastest(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default=str(VALID / "gutenberg" / "pg36.txt"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    block = Path(args.file).read_bytes()[: 64 << 10]
    codec = make_codec("llm")
    codec.encode_block(block[:3000])  # load the model, compile
    prefill_s, fast = _fastest(lambda: codec.encode_block(block), args.repeat)
    schedule = LanguageModelCodec._schedule
    LanguageModelCodec._schedule = (lambda self, loaded, lanes, steps, start_id, tokens=None:
                                    schedule(self, loaded, lanes, steps, start_id))
    try:
        step_s, slow = _fastest(lambda: codec.encode_block(block), args.repeat)
    finally:
        LanguageModelCodec._schedule = schedule
    assert fast == slow, "the prefill changed the payload"
    decode_s, back = _fastest(lambda: codec.decode_block(fast, len(block)), args.repeat)
    assert back == block
    print(f"{Path(args.file).name}, {len(block):,} bytes, payload {len(fast):,} bytes (the same "
          f"both ways): encode with the prefill {prefill_s:.2f} s, position by position "
          f"{step_s:.2f} s ({step_s / prefill_s:.2f}x); decode {decode_s:.2f} s")


if __name__ == "__main__":
    main()
