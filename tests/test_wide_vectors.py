"""This package's numba kernels prefer 512-bit vectors, and nobody else's do
(:mod:`llm_codecs.wide_vectors`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from llm_codecs import wide_vectors

# Compiles in a fresh process with an empty cache (a cached kernel keeps the code it was
# compiled with), one kernel of the package and one function of nobody's, and reports whether
# each carries the attribute and uses 512-bit registers.
_FRESH = textwrap.dedent("""
    import json, sys
    import numba, numpy as np
    from llm_codecs.coding import _quantize_kernel as kernel
    from llm_codecs import wide_vectors

    @numba.njit
    def theirs(x):
        total = 0
        for v in x:
            total += v * v
        return total

    ours = kernel._row_peak
    bits = np.arange(-500, 500, dtype=np.int32)
    box = np.empty(1, dtype=np.int32)
    ours(bits, box, box.view(np.float32))
    theirs(bits.astype(np.int64))
    report = {}
    for name, function in (("ours", ours), ("theirs", theirs)):
        signature = function.signatures[0]
        report[name] = {"marked": wide_vectors.ATTRIBUTE in function.inspect_llvm(signature),
                        "zmm": "zmm" in function.inspect_asm(signature)}
    import llvmlite.binding as llvm
    report["avx512"] = "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")
    print(json.dumps(report))
""")


def _fresh_report(tmp_path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _FRESH], capture_output=True, text=True, timeout=300,
        env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
             "LLM_CODECS_COMPILE_HELPER": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_only_this_packages_kernels_are_marked(tmp_path):
    report = _fresh_report(tmp_path)
    assert report["ours"]["marked"]
    assert not report["theirs"]["marked"]
    if not report["avx512"]:
        pytest.skip("this CPU has no 512-bit vectors to check for")
    # The mark takes effect: the kernel's loop runs on 512-bit registers, the other function's
    # (LLVM's default tuning on this CPU, which may or may not prefer them) is left alone.
    assert report["ours"]["zmm"]


def test_install_is_idempotent():
    from numba.core import cpu

    assert wide_vectors.install()
    hook = cpu.CPUContext.post_lowering
    assert wide_vectors.install()
    assert cpu.CPUContext.post_lowering is hook  # not wrapped twice


def test_a_failing_mark_never_stops_a_compile(monkeypatch):
    import numba

    def broken(module):
        raise AttributeError("an llvmlite whose functions look otherwise")

    monkeypatch.setattr(wide_vectors, "_mark", broken)
    assert wide_vectors.install()

    @numba.njit  # not cached: compiled here, through the hook
    def square_sum(n):
        total = 0
        for i in range(n):
            total += i * i
        return total

    assert square_sum(10) == 285
