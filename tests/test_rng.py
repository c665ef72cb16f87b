"""Tests of ``simulator.rng``: counter-based per-borrower uniforms and seed derivation.

Statistical assertions use fixed seeds, so each is deterministic; the tolerances are
chosen so that a correct generator passes with overwhelming probability (stated per
test) while a structural defect (a stuck slot, a counter that is ignored, correlated
neighbours) fails by many standard errors.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import stats

from simulator import rng
from simulator.rng import BorrowerStream, Streams, replication_seed

N = 200_000
MASK64 = 2**64 - 1


def _ids(n: int = N) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def _zeros(n: int = N) -> np.ndarray:
    return np.zeros(n, dtype=np.uint32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# ----------------------------------------------------------------------------- range


def test_uniforms_are_in_open_unit_interval_and_shaped() -> None:
    u = Streams(1).borrower_stream("x").uniforms(_ids(), _zeros(), 3)
    assert u.shape == (N, 3)
    assert u.dtype == np.float64
    assert (u > 0).all()
    assert (u < 1).all()


def _unxorshift(y: int, s: int) -> int:
    x = y
    for _ in range(64 // s + 1):
        x = y ^ (x >> s)
    return x & MASK64


def _unmix(z: int) -> int:
    """Inverse of the SplitMix64 finaliser ``rng._mix`` (a bijection of 64-bit words)."""
    z = _unxorshift(z, 31)
    z = (z * pow(int(rng._M2), -1, 2**64)) & MASK64
    z = _unxorshift(z, 27)
    z = (z * pow(int(rng._M1), -1, 2**64)) & MASK64
    return _unxorshift(z, 30)


@pytest.mark.parametrize("target", [MASK64, 0, (2**53 - 1) << 11, 2**63])
def test_extreme_bit_patterns_stay_strictly_inside_unit_interval(target: int) -> None:
    # The finaliser is invertible, so a stream key can be chosen that makes borrower 0's
    # first draw hit any 64-bit word. The all-ones word is the largest possible draw: it
    # used to round to exactly 1.0 (2**53 - 0.5 is not a double), which would give a
    # zero waiting time in the repayment clock and an infinite agent handle time.
    check = rng._mix(np.array([_unmix(target)], dtype=np.uint64))
    assert int(check[0]) == target
    base = (_unmix(target) - int(rng._SLOT)) & MASK64
    base0 = _unmix(base) ^ int(rng._GOLDEN)
    key = _unmix(base0)
    u = BorrowerStream(key).uniforms(np.array([0], dtype=np.int64), _zeros(1), 1)
    assert 0.0 < u[0, 0] < 1.0


# ----------------------------------------------------------------------------- uniformity


@pytest.mark.parametrize("slot", [0, 1, 2])
def test_uniforms_pass_ks(slot: int) -> None:
    # Fixed seed: a correct generator fails p > 0.001 with probability 0.001 per seed;
    # a bias of 0.5 % in the CDF at n = 200 000 gives D ~ 0.005, about 2.2x the 0.001
    # critical value (1.95 / sqrt(n) = 0.0044), and would be caught.
    u = Streams(7).borrower_stream("repayment_time").uniforms(_ids(), _zeros(), 3)[:, slot]
    assert stats.kstest(u, "uniform").pvalue > 0.001


def test_uniforms_pass_ks_along_the_counter() -> None:
    # One borrower's successive draws (the counter axis) must be uniform too.
    ids = np.full(N, 12345, dtype=np.int64)
    counters = np.arange(N, dtype=np.uint32)
    u = Streams(7).borrower_stream("repayment_time").uniforms(ids, counters, 1)[:, 0]
    assert stats.kstest(u, "uniform").pvalue > 0.001


def test_pairs_fill_the_unit_square_evenly() -> None:
    # Chi-square on a 20 x 20 grid of (slot 0, slot 1) pairs: 400 cells, 500 expected per
    # cell. Catches dependence that a correlation coefficient would miss (e.g. u2 = f(u1)
    # non-linearly). Threshold p > 0.001 with a fixed seed.
    u = Streams(11).borrower_stream("contact").uniforms(_ids(), _zeros(), 2)
    counts, _, _ = np.histogram2d(u[:, 0], u[:, 1], bins=20, range=[[0, 1], [0, 1]])
    assert stats.chisquare(counts.ravel()).pvalue > 0.001


# ----------------------------------------------------------------------------- independence

# Under independence the sample correlation of n pairs has standard error 1/sqrt(n);
# |r| < 4/sqrt(n) fails by chance with probability 6e-5 per comparison (n = 200 000:
# bound 0.0089). A stream that ignored ids, counters, slots or purposes gives r = 1.
CORR_BOUND = 4.0 / np.sqrt(N)


def test_neighbouring_borrowers_are_uncorrelated() -> None:
    u = Streams(3).borrower_stream("repayment_time").uniforms(_ids(N + 1), _zeros(N + 1), 1)
    assert abs(_corr(u[:-1, 0], u[1:, 0])) < CORR_BOUND


def test_successive_counters_are_uncorrelated() -> None:
    s = Streams(3).borrower_stream("repayment_time")
    a = s.uniforms(_ids(), _zeros(), 1)[:, 0]
    b = s.uniforms(_ids(), _zeros() + 1, 1)[:, 0]
    assert abs(_corr(a, b)) < CORR_BOUND
    assert not np.array_equal(a, b)


def test_slots_are_uncorrelated() -> None:
    u = Streams(3).borrower_stream("contact").uniforms(_ids(), _zeros(), 12)
    c = np.asarray(np.corrcoef(u.T))
    off_diagonal = c[~np.eye(12, dtype=bool)]
    # 66 distinct pairs: chance of any |r| > 4 SE is about 66 * 6e-5 = 0.4 %.
    assert np.abs(off_diagonal).max() < CORR_BOUND


def test_purposes_are_uncorrelated() -> None:
    streams = Streams(3)
    a = streams.borrower_stream("repayment_time").uniforms(_ids(), _zeros(), 1)[:, 0]
    b = streams.borrower_stream("repayment_amount").uniforms(_ids(), _zeros(), 1)[:, 0]
    assert abs(_corr(a, b)) < CORR_BOUND


def test_seeds_are_uncorrelated() -> None:
    a = Streams(3).borrower_stream("contact").uniforms(_ids(), _zeros(), 1)[:, 0]
    b = Streams(4).borrower_stream("contact").uniforms(_ids(), _zeros(), 1)[:, 0]
    assert abs(_corr(a, b)) < CORR_BOUND


def test_generators_per_purpose_are_uncorrelated() -> None:
    streams = Streams(5)
    a = streams.generator("population").random(N)
    b = streams.generator("strategy").random(N)
    assert abs(_corr(a, b)) < CORR_BOUND


def test_counter_and_id_axes_do_not_alias() -> None:
    # Draw (id i, counter k) must not equal draw (id i + 1, counter k - 1) or any simple
    # shift: compare the full 2-D table of 400 x 400 draws for duplicates.
    n = 400
    ids = np.repeat(np.arange(n, dtype=np.int64), n)
    counters = np.tile(np.arange(n, dtype=np.uint32), n)
    u = Streams(9).borrower_stream("contact").uniforms(ids, counters, 2)
    # 320 000 doubles with 53-bit mantissas: a duplicate by chance has probability ~ 1e-5.
    assert np.unique(u).size == u.size


# ----------------------------------------------------------------------------- determinism


def test_same_inputs_give_same_draws() -> None:
    ids = np.array([0, 5, 5, 999_999, 3], dtype=np.int64)
    counters = np.array([0, 1, 1, 7, 2**32 - 1], dtype=np.uint32)
    a = Streams(42).borrower_stream("repayment_time").uniforms(ids, counters, 4)
    b = Streams(42).borrower_stream("repayment_time").uniforms(ids, counters, 4)
    assert np.array_equal(a, b)
    # Rows with identical (id, counter) are identical; the draw of one borrower does not
    # depend on which other borrowers are in the batch (needed for lazy, vectorised use).
    assert np.array_equal(a[1], a[2])
    alone = Streams(42).borrower_stream("repayment_time").uniforms(ids[3:4], counters[3:4], 4)
    assert np.array_equal(alone[0], a[3])


def test_generator_is_reproducible() -> None:
    a = Streams(42).generator("population").random(10)
    b = Streams(42).generator("population").random(10)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, Streams(43).generator("population").random(10))


def test_purpose_word_is_stable_across_processes() -> None:
    # blake2b, not the salted built-in hash(): pin one value so a change is noticed.
    assert rng._purpose_word("repayment_time") == rng._purpose_word("repayment_time")
    assert rng._purpose_word("a") != rng._purpose_word("b")
    expected = int.from_bytes(hashlib.blake2b(b"population", digest_size=4).digest(), "little")
    assert rng._purpose_word("population") == expected


def test_replication_seed_differs_per_replication_and_is_stable() -> None:
    seeds = [replication_seed(20261128, r) for r in range(1000)]
    assert len(set(seeds)) == 1000
    assert seeds == [replication_seed(20261128, r) for r in range(1000)]
    assert all(0 <= s < 2**63 for s in seeds)  # fits the scenario's seed field
    others = [replication_seed(20261129, r) for r in range(1000)]
    assert not set(seeds) & set(others)


def test_replication_streams_are_uncorrelated() -> None:
    a = Streams(replication_seed(1, 0)).borrower_stream("x").uniforms(_ids(), _zeros(), 1)
    b = Streams(replication_seed(1, 1)).borrower_stream("x").uniforms(_ids(), _zeros(), 1)
    assert abs(_corr(a[:, 0], b[:, 0])) < CORR_BOUND


def test_scalar_draws_match_array_draws_bit_for_bit() -> None:
    # The agent's dial reads three slots through the scalar path; the batch that applies
    # the call reads all twelve through the array path. They must agree exactly.
    stream = Streams(5).borrower_stream("contact")
    ids = np.array([0, 1, 7, 123_456, 2**40], dtype=np.int64)
    counters = np.array([0, 3, 9, 2**31, 5], dtype=np.uint32)
    u = stream.uniforms(ids, counters, 12)
    for k in range(ids.size):
        one = stream.uniforms_one(int(ids[k]), int(counters[k]), tuple(range(12)))
        assert one == u[k].tolist()
        # A one-borrower batch takes the scalar path inside ``uniforms``.
        assert stream.uniforms(ids[k:k + 1], counters[k:k + 1], 12).tolist() == [one]
    # Prepared dials draw chosen slots in a batch.
    assert np.array_equal(stream.uniforms_at(ids, counters, (0, 1, 10)), u[:, [0, 1, 10]])


def _splitmix64_finaliser(x: np.ndarray) -> np.ndarray:
    """The finaliser as its published expression, each step a new array."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def test_the_in_place_mixer_is_the_mixer() -> None:
    # ``_mix`` mixes its caller's temporaries in place; every bit must be the published
    # expression's, the extreme patterns included, and its one-int twin's.
    gen = np.random.default_rng(3)
    x = np.concatenate([gen.integers(0, 2**63, 10_000, dtype=np.uint64) * np.uint64(2),
                        np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64)])
    with np.errstate(over="ignore"):
        expected = _splitmix64_finaliser(x)
        assert np.array_equal(rng._mix(x.copy()), expected)
    assert [rng._mix_int(int(v)) for v in x[-4:]] == [int(v) for v in expected[-4:]]
