"""On a fresh install, a helper process compiles the tables' and context mixing's kernels while
the coding process compiles the model's (:mod:`llm_codecs.compile_helper`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import llm_codecs
from llm_codecs import compile_helper

from .helpers import read_head

_COLD = textwrap.dedent("""
    import json, sys
    import llm_codecs
    from llm_codecs.coding import (_cm3_kernel, _match_kernel, _quantize_kernel,
                                   _successor_kernel, rans)
    frame = llm_codecs.compress(open(sys.argv[1], "rb").read())
    counts = {}
    for module in (_quantize_kernel, _match_kernel, _successor_kernel, rans, _cm3_kernel):
        for name, kernel in vars(module).items():
            stats = getattr(kernel, "stats", None)
            if stats is not None and (stats.cache_hits or stats.cache_misses):
                counts[f"{module.__name__}.{name}"] = [sum(stats.cache_hits.values()),
                                                       sum(stats.cache_misses.values())]
    print(json.dumps({"frame": frame.hex(), "counts": counts}))
""")


def _cold_run(tmp_path, data: bytes) -> dict:
    """Compress ``data`` in a new process whose numba cache starts empty."""
    path = tmp_path / "input.txt"
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", _COLD, str(path)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="the helper needs two CPUs")
def test_a_fresh_install_compiles_the_tables_and_cm_in_a_helper(tmp_path):
    text = read_head("canterbury/alice29.txt", 3000)
    helped = _cold_run(tmp_path, text)
    # The coding process found the tables', the rANS coder's and context mixing's kernels in
    # the cache, which was empty when it started: the helper compiled them.
    counts = helped["counts"]
    assert {"llm_codecs.coding._quantize_kernel.mixed_rows", "llm_codecs.coding._cm3_kernel.run",
            "llm_codecs.coding._match_kernel.adjust_rows"} <= counts.keys()
    for name, (hits, misses) in counts.items():
        assert hits >= 1 and misses == 0, (name, hits, misses)
    # (With LLM_CODECS_COMPILE_HELPER=0 the same run counts a miss and no hit for each.)
    # Nothing of the frame depends on who compiled what.
    assert bytes.fromhex(helped["frame"]) == llm_codecs.compress(text)


@pytest.fixture
def fresh_state(monkeypatch):
    """compile_helper's records as in a new process; the real ones come back afterwards."""
    monkeypatch.setattr(compile_helper, "_considered", set())
    monkeypatch.setattr(compile_helper, "_helpers", {})
    # Every group counts as missing from the cache.
    monkeypatch.setattr(compile_helper, "_on_disk", lambda dispatcher: False)


def test_no_helper_with_one_cpu_or_when_turned_off(fresh_state, monkeypatch):
    compile_helper.start(["tables"], cpus=1)
    monkeypatch.setenv("LLM_CODECS_COMPILE_HELPER", "0")
    compile_helper.start(["cm"], cpus=8)
    assert compile_helper._helpers == {}
    # Each group is considered once per process.
    monkeypatch.delenv("LLM_CODECS_COMPILE_HELPER")
    compile_helper.start(["tables", "cm"], cpus=8)
    assert compile_helper._helpers == {}


def test_a_helper_that_fails_does_not_hold_anyone_up(fresh_state, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    compile_helper.start(["tables"], cpus=2)
    helper = compile_helper._helpers["tables"]
    began = time.perf_counter()
    compile_helper.wait_for("tables")
    assert time.perf_counter() - began < 30
    assert helper.process.wait(30) != 0
    compile_helper.wait_for("cm")  # no helper for it: returns at once


def test_the_helper_command_runs_this_package_and_reports_each_group():
    # The command line _Helper runs, with a group the helper does not know: it fails to compile
    # it and says it is done.
    done = subprocess.run(
        [sys.executable, "-P", "-m", "llm_codecs.compile_helper", compile_helper._PACKAGE,
         "unknown"], capture_output=True, text=True, timeout=120, cwd=os.path.dirname(__file__))
    assert done.returncode == 0 and done.stdout.split() == ["unknown"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_wait_for_its_parents_helper(fresh_state, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    compile_helper.start(["tables"], cpus=2)
    assert "tables" in compile_helper._helpers
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        began = time.perf_counter()
        compile_helper.wait_for("tables")
        os._exit(0 if time.perf_counter() - began < 5 and not compile_helper._helpers else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_helper_prints_each_group_even_if_it_fails_and_only_for_this_package(monkeypatch,
                                                                                    capsys):
    def fails():
        raise RuntimeError("no compiler here")

    monkeypatch.setitem(compile_helper.GROUPS, "fine", (None, lambda: None))
    monkeypatch.setitem(compile_helper.GROUPS, "broken", (None, fails))
    compile_helper.main([compile_helper._PACKAGE, "broken", "fine"])
    assert capsys.readouterr().out.split() == ["broken", "fine"]
    # Another copy of the package caches other files' kernels: the helper does nothing.
    compile_helper.main([os.path.dirname(compile_helper._PACKAGE), "fine"])
    assert capsys.readouterr().out == ""
