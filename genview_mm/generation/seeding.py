"""Per-image seeds: a pure function of (base seed, image key, variation index).

The seed does not depend on the batch, the shard or the world size, so the same image with the
same base seed is generated identically wherever it is processed.
"""
import hashlib

SEED_BITS = 63


def image_seed(key: str, base_seed: int = 0, variation: int = 0) -> int:
    """A 63-bit seed from sha256 of ``'<base_seed>:<variation>:<key>'``."""
    digest = hashlib.sha256(f'{int(base_seed)}:{int(variation)}:{key}'.encode()).digest()
    return int.from_bytes(digest[:8], 'big') >> (64 - SEED_BITS)
