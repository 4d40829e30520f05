"""Speed and overhead of the rANS64 coder (llm_codecs.coding.rans).

Random frequency tables (quantized Gaussian logits) for ``lanes`` lanes per step, all coded
through one state as the LLM codec does; a pool of tables is reused cyclically so that memory
stays bounded. Table generation is outside the timing; the per-step table lookups
(``symbol_bounds`` when encoding, the search inside ``decode_step`` when decoding) are inside it,
as they are in the codec. Overhead is the payload size over the cross-entropy of the coded
symbols under the quantized tables, i.e. the coder's own loss.

Usage::

    python benchmarks/rans_speed.py                      # lanes 1, 16, 64, 256
    python benchmarks/rans_speed.py --lanes 64 --steps 4000 --vocab 4096
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from llm_codecs.coding.quantize import cumulative, quantize
from llm_codecs.coding.rans import RansDecoder, encode, symbol_bounds


def run(lanes: int, steps: int, vocab: int, scale_bits: int, pool: int, sigma: float,
        seed: int = 0) -> dict:
    """Encode and decode ``steps`` symbols on each of ``lanes`` lanes; return the figures."""
    g = torch.Generator().manual_seed(seed)
    M = 1 << scale_bits
    cums, logps = [], []
    for _ in range(pool):
        freqs = quantize(torch.randn(lanes, vocab, generator=g) * sigma, scale_bits)
        cums.append(cumulative(freqs).numpy())
        logps.append(torch.log2(freqs.double() / M))
    symbols = np.empty((steps, lanes), dtype=np.int64)
    bits = 0.0
    for t in range(steps):
        logp = logps[t % pool]
        s = torch.multinomial(logp.exp2(), 1, generator=g).squeeze(1)
        symbols[t] = s.numpy()
        bits -= float(logp.gather(1, s[:, None]).sum())
    active = np.ones(lanes, dtype=bool)

    # Warm-up: compile (or load) the kernels outside the timing.
    warm = encode(*symbol_bounds(cums[0], symbols[0]), scale_bits)
    RansDecoder(warm).decode_step(cums[0], active, scale_bits)

    t0 = time.perf_counter()
    starts = np.empty((steps, lanes), dtype=np.int64)
    freqs = np.empty_like(starts)
    for t in range(steps):
        starts[t], freqs[t] = symbol_bounds(cums[t % pool], symbols[t])
    stream = encode(starts.reshape(-1), freqs.reshape(-1), scale_bits)
    t_enc = time.perf_counter() - t0

    t0 = time.perf_counter()
    dec = RansDecoder(stream)
    out = np.empty_like(symbols)
    for t in range(steps):
        out[t] = dec.decode_step(cums[t % pool], active, scale_bits)
    dec.check_finished()
    t_dec = time.perf_counter() - t0
    if not np.array_equal(out, symbols):
        raise AssertionError("round trip failed")

    payload = 8 * len(stream)
    n = lanes * steps
    return {
        "lanes": lanes, "steps": steps, "enc_sym_s": n / t_enc, "dec_sym_s": n / t_dec,
        "bits_per_sym": bits / n, "overhead": payload / bits,
        "overhead_no_flush": (payload - 64) / bits,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--steps", type=int, default=2000, help="symbols per lane")
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--scale-bits", type=int, default=28)
    ap.add_argument("--pool", type=int, default=4, help="distinct tables, reused cyclically")
    ap.add_argument("--sigma", type=float, default=4.0,
                    help="std of the random logits (4 gives ~6 bits/symbol at V=50257)")
    args = ap.parse_args(argv)
    print(f"numpy {np.__version__}, {platform.processor() or platform.machine()}, "
          f"V={args.vocab}, scale_bits={args.scale_bits}, {args.steps} symbols/lane")
    print(f"{'lanes':>6} {'enc sym/s':>12} {'dec sym/s':>12} {'bits/sym':>9} "
          f"{'payload/CE':>11} {'w/o flush':>10}")
    for lanes in args.lanes:
        r = run(lanes, args.steps, args.vocab, args.scale_bits, args.pool, args.sigma)
        print(f"{r['lanes']:>6} {r['enc_sym_s']:>12,.0f} {r['dec_sym_s']:>12,.0f} "
              f"{r['bits_per_sym']:>9.3f} {r['overhead']:>11.6f} {r['overhead_no_flush']:>10.6f}")


if __name__ == "__main__":
    main()
