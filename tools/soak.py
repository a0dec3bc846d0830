"""Memory soak (not a pytest test): 500 successive different texts through the app's cached tracing, with RSS
before and after. Run: python -m tools.soak [N]. The trace cache is capped (pages/common/cache.py), so RSS must
level off instead of growing with N."""

import gc
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pages.common import cache  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n: int = 500) -> None:
    cache.traced("tiny-stories-1m", "cpu", "warm up")
    gc.collect()
    before = rss_mb()
    marks = {}
    for i in range(n):
        text = f"Story number {i}: " + " ".join(f"word{(i * 7 + j) % 97}" for j in range(i % 60 + 5))
        cache.traced("tiny-stories-1m", "cpu", text)
        if (i + 1) % 100 == 0:
            gc.collect()
            marks[i + 1] = round(rss_mb(), 1)
    print(f"RSS before: {before:.1f} MB; after n texts: {marks}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
