"""Similar photos are found by the 16-bit bands of their perceptual hashes and those bands' one-bit neighbours: no
pair within 7 bits can be missed, and a stored hash is read only when one of its bands is that close."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.intake.duplicates import hamming, hash_bands, probe_bands


def _found(mine: str, stored: str) -> bool:
    """Whether the lookup for ``mine`` reads the rows stored for ``stored``."""
    probes = dict(probe_bands(mine))
    return any(value in probes[band] for band, value in hash_bands(stored))


def _flip(value: int, bits: set[int]) -> str:
    for bit in bits:
        value ^= 1 << bit
    return f"{value:016x}"


@given(st.integers(0, 2**64 - 1), st.sets(st.integers(0, 63), max_size=7))
def test_hashes_within_seven_bits_are_found(value: int, flipped: set[int]) -> None:
    a, b = f"{value:016x}", _flip(value, flipped)
    assert hamming(a, b) == len(flipped)
    assert _found(a, b) and _found(b, a)


def test_two_bits_in_every_band_escape_the_lookup() -> None:
    """Eight differing bits can escape it: the reason the threshold is capped at 7."""
    a = "0000" * 4
    b = "0003" * 4
    assert hamming(a, b) == 8
    assert not _found(a, b)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_a_stored_hash_is_read_only_when_a_band_is_within_one_bit(value: int, other: int) -> None:
    a, b = f"{value:016x}", f"{other:016x}"
    pairs = zip(hash_bands(a), hash_bands(b), strict=True)
    close = any(hamming(f"{x:04x}", f"{y:04x}") <= 1 for (_, x), (_, y) in pairs)
    assert _found(a, b) == close


def test_bands_are_the_four_16_bit_words_in_order() -> None:
    assert hash_bands("0102030405060708") == [(0, 0x0102), (1, 0x0304), (2, 0x0506), (3, 0x0708)]
    probes = dict(probe_bands("0102030405060708"))
    assert len(probes[0]) == 17 and probes[0][0] == 0x0102 and 0x0103 in probes[0] and 0x8102 in probes[0]
