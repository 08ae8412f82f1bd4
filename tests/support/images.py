"""Images made in tests: decompression bombs and small valid pictures."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid 1-bit PNG of width x height zero pixels: a few hundred KB that would decode to gigabytes."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * 1000) for _ in range(height // 1000)]
    parts.append(compressor.compress(row * (height % 1000)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def small_jpeg(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    for x in range(0, size[0], 4):
        image.putpixel((x, (x + seed) % size[1]), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height 8-bit RGB pixels and whose data holds almost none."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def small_png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """A small valid PNG with one more chunk just before IEND."""
    png = small_png()
    end = png.rindex(b"IEND") - 4
    return png[:end] + _chunk(kind, data) + png[end:]


def deflated_zeros(size: int) -> bytes:
    """``size`` zero bytes deflated at level 9: about a thousandth of the size."""
    compressor = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush()


def png_with_long_data(width: int = 64, height: int = 48, inflated: int = 32 << 20) -> bytes:
    """A width x height PNG whose pixel stream inflates to ``inflated`` bytes, far beyond what its header needs."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = deflated_zeros(inflated)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims width x height."""
    data = small_jpeg(5)
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def webp_declaring(width: int, height: int) -> bytes:
    """An extended WebP header (VP8X) with a width x height canvas and no image data."""
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(vp8x)) + b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x


def jpeg_with_payload(payload: bytes) -> bytes:
    """A small JPEG carrying ``payload`` in a comment (COM), in EXIF (ImageDescription) and after its end."""
    image = Image.open(io.BytesIO(small_jpeg(6)))
    exif = Image.Exif()
    exif[0x010E] = payload.decode("latin-1")  # ImageDescription
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif.tobytes(), comment=payload)
    return buffer.getvalue() + payload


def progressive_jpeg(side: int = 1200, *, repeat_last_scan: int = 0) -> bytes:
    """A grey progressive JPEG (Pillow writes libjpeg's standard script: 6 scans for one component), optionally
    with its last scan repeated: each copy is a few dozen bytes that the decoder runs over the whole image (the
    many-scans CPU bomb)."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 128).save(buffer, "JPEG", quality=85, progressive=True)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    scan = data[last_scan : data.rindex(b"\xff\xd9")]
    return data[: last_scan + len(scan)] + scan * repeat_last_scan + b"\xff\xd9"
