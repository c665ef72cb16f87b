"""Randomness: one root seed, named streams per purpose, counter-based streams per borrower.

A ``numpy.random.Generator`` per borrower would cost a kilobyte and microseconds each,
too much at a million borrowers. Per-borrower draws are instead a pure function of
(purpose key, borrower id, the borrower's own draw counter, slot), computed vectorised
with the SplitMix64 finaliser. Borrower ``i``'s ``k``-th repayment draw is therefore
the same in every strategy arm run from the same seed: common random numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SLOT = np.uint64(0xD6E8FEB86659FD93)
_TO_UNIT = 1.0 / float(2**53)
# The largest double below 1. ``2**53 - 0.5`` is not a double and rounds up to ``2**53``,
# so the top 53-bit word would map to exactly 1.0 without this clamp.
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _purpose_word(purpose: str) -> int:
    """A stable 32-bit word for a purpose name (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(purpose.encode(), digest_size=4).digest(), "little")


def replication_seed(root_seed: int, replication: int) -> int:
    """The seed of replication ``replication``, derived from the scenario's root seed."""
    ss = np.random.SeedSequence(root_seed, spawn_key=(replication,))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The SplitMix64 finaliser (Steele, Lea & Flood 2014), a bijection with full
    avalanche: ``x ^= x >> 30; x *= M1; x ^= x >> 27; x *= M2; x ^= x >> 31``, computed in
    ``x`` itself (a temporary of the caller's, which it overwrites): one scratch array
    instead of five temporaries, on millions of draws."""
    scratch = np.right_shift(x, np.uint64(30))
    x ^= scratch
    x *= _M1
    np.right_shift(x, np.uint64(27), out=scratch)
    x ^= scratch
    x *= _M2
    np.right_shift(x, np.uint64(31), out=scratch)
    x ^= scratch
    return x


class Streams:
    """All random streams of one run, derived from a single seed."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def _sequence(self, purpose: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=(_purpose_word(purpose),))

    def generator(self, purpose: str) -> np.random.Generator:
        """An independent ``Generator`` for one purpose (population, strategy, ...)."""
        return np.random.Generator(np.random.PCG64(self._sequence(purpose)))

    def borrower_stream(self, purpose: str) -> BorrowerStream:
        """Counter-based per-borrower uniforms for one purpose."""
        key = int(self._sequence(purpose).generate_state(1, np.uint64)[0])
        return BorrowerStream(key)


_MASK = (1 << 64) - 1


def _mix_int(x: int) -> int:
    """``_mix`` on one Python int: bit for bit the same result, without numpy overhead."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class BorrowerStream:
    """Uniform draws indexed by (borrower, counter, slot); the caller owns the counters."""

    def __init__(self, key: int):
        self.key = np.uint64(key)
        self._key_int = int(key)

    def uniforms_one(self, borrower: int, counter: int, slots: Iterable[int]) -> list[float]:
        """The given slots of ``uniforms`` for one borrower, bit for bit the same values."""
        base = _mix_int((borrower * 0x9E3779B97F4A7C15 + self._key_int) & _MASK)
        base = _mix_int(base ^ ((counter * 0x94D049BB133111EB + 0x9E3779B97F4A7C15) & _MASK))
        return [min(((_mix_int((base + (k + 1) * 0xD6E8FEB86659FD93) & _MASK) >> 11) + 0.5)
                    * _TO_UNIT, _BELOW_ONE) for k in slots]

    def uniforms(
        self, ids: NDArray[np.int64], counters: NDArray[np.uint32], slots: int
    ) -> NDArray[np.float64]:
        """An ``(len(ids), slots)`` array of uniforms in the open interval (0, 1)."""
        if ids.size == 1:
            # One borrower (a dialled account with an event due, say): the Python-int
            # mixer is ten times faster than a dozen numpy calls on one-element arrays.
            return np.array([self.uniforms_one(int(ids[0]), int(counters[0]), range(slots))])
        return self.uniforms_at(ids, counters, range(slots))

    def uniforms_at(
        self, ids: NDArray[np.int64], counters: NDArray[np.uint32], slots: Iterable[int]
    ) -> NDArray[np.float64]:
        """Only the given slots of ``uniforms``, one column each, bit for bit the same."""
        with np.errstate(over="ignore"):
            base = _mix(ids.astype(np.uint64) * _GOLDEN + self.key)
            base = _mix(base ^ (counters.astype(np.uint64) * _M2 + _GOLDEN))
            slot = (np.fromiter(slots, dtype=np.uint64) + np.uint64(1)) * _SLOT
            bits = _mix(base[:, None] + slot[None, :])
        bits >>= np.uint64(11)
        u = bits.astype(np.float64)
        del bits
        u += 0.5  # the same operations as ``(bits + 0.5) * _TO_UNIT``, in place
        u *= _TO_UNIT
        return np.minimum(u, _BELOW_ONE, out=u)
