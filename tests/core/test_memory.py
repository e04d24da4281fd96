"""Freed grid-sized arrays are kept for reuse during a run, and given back after it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import json
    import numpy as np
    from plastic_hotspots.memory import reuse_freed_memory

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024

    def freed_bytes_kept(size=50_000_000):
        before = rss()
        block = np.ones(size)  # 400 MB by default, touched
        grown = rss() - before
        del block
        return (rss() - before) / grown

    outside = freed_bytes_kept()
    with reuse_freed_memory() as applied:
        inside = freed_bytes_kept()
        inside_large = freed_bytes_kept(320_000_000)  # 2.56 GB: above the largest int threshold
        first = np.ones(50_000_000)
        address = first.ctypes.data
        del first
        again = np.empty(50_000_000)
        reused = again.ctypes.data == address
        del again
    after = freed_bytes_kept()
    print(json.dumps({"applied": applied, "outside": outside, "inside": inside,
                      "inside_large": inside_large, "after": after,
                      "reused": reused}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings: Linux only")
def test_freed_arrays_are_kept_for_reuse_inside_and_given_back_outside() -> None:
    import json

    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["applied"] is True
    assert figures["outside"] < 0.1  # freed memory goes back to the system
    assert figures["inside"] > 0.9  # kept in the heap
    assert figures["inside_large"] > 0.9  # however large the freed block
    assert figures["reused"] is True  # and the next array of that size takes it
    assert figures["after"] < 0.1  # the defaults are back once the block ends
