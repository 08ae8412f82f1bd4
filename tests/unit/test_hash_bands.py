"""Similar photos are found by the bytes of their perceptual hashes: no pair within 7 bits can be missed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.intake.duplicates import hamming, hash_bands


@given(st.integers(0, 2**64 - 1), st.sets(st.integers(0, 63), max_size=7))
def test_hashes_within_seven_bits_share_a_band(value: int, flipped: set[int]) -> None:
    other = value
    for bit in flipped:
        other ^= 1 << bit
    a, b = f"{value:016x}", f"{other:016x}"
    assert hamming(a, b) == len(flipped)
    assert set(hash_bands(a)) & set(hash_bands(b))


def test_one_bit_in_every_byte_shares_no_band() -> None:
    """Eight differing bits can escape the lookup: the reason the threshold is capped at 7."""
    a = "00" * 8
    b = "01" * 8
    assert hamming(a, b) == 8
    assert not set(hash_bands(a)) & set(hash_bands(b))


def test_bands_are_the_bytes_in_order() -> None:
    assert hash_bands("0102030405060708") == [(i, i + 1) for i in range(8)]
