"""Searches analyse probes on several threads at once (`facetrace serve`): dlib's
models must not be shared between threads, or the process crashes (a segmentation
fault, so the check runs in a child process)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import FR

SCRIPT = """
import sys, threading
from pathlib import Path
from facetrace import Settings
from facetrace.vision.analyzer import build_analyzer
from facetrace.vision.imaging import decode_image

analyzer = build_analyzer(Settings(home=Path(sys.argv[1]), workers=1))
photos = [decode_image(Path(p).read_bytes(), max_bytes=10**8, max_pixels=10**9).pixels
          for p in sys.argv[2:]]
start = threading.Barrier(6)
found = []

def work(n):
    start.wait()  # every thread's first detection at once, on cold models
    for _ in range(3):
        found.append(len(analyzer.analyze(photos[n % len(photos)], with_thumbnails=False)))

threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
for t in threads: t.start()
for t in threads: t.join()
print(sorted(set(found)))
"""


def test_concurrent_analyses_do_not_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    photos = [str(FR / "obama2.jpg"), str(FR / "two_people.jpg")]
    for _ in range(3):
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path), *photos],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.strip() == "[1, 2]"  # one face, two faces: every time
