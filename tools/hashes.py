"""Rewrite assets/SHA256SUMS after an asset changed on purpose: python -m tools.hashes"""

from core.loading.integrity import SUMS, write_sums

if __name__ == "__main__":
    print(f"{write_sums()} files recorded in {SUMS}")
