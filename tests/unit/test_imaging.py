"""app.intake.imaging against real camera files and hostile bytes.

The photos live in shared/data/photos beside the repository (CI clones them there); they are test inputs only.
"""

from __future__ import annotations

import gc
import io
import itertools
import resource
import struct
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageFile, ImageStat
from PIL.TiffImagePlugin import IFDRational

from app.intake.errors import ImageCorrupt, ImageTooLarge, NotAnImage, UnsupportedImageType
from app.intake.imaging import (
    Derivative,
    ExifFacts,
    ImageLimits,
    ProcessedImage,
    process_image,
    sniff_format,
)

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO.parent / "shared" / "data" / "photos"
INTAKE_ERRORS = (NotAnImage, UnsupportedImageType, ImageTooLarge, ImageCorrupt)
DAMAGED = {"jpg/corrupted.jpg"}  # decodes "successfully" in Pillow, but shifted and greyed: see its own test
SAMPLES = sorted(
    path.relative_to(PHOTOS).as_posix()
    for path in PHOTOS.rglob("*")
    if path.suffix.lower() in {".jpg", ".jpeg", ".heic", ".heif"}
)
HYPOTHESIS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def photo_bytes(relative: str) -> bytes:
    path = PHOTOS / relative
    assert path.is_file(), f"{path} missing: shared/ must be checked out beside the repository"
    return path.read_bytes()


def process(data: bytes, limits: ImageLimits = ImageLimits()) -> ProcessedImage:
    return process_image(io.BytesIO(data), limits)


def encode(im: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **params)
    return buffer.getvalue()


def reopen(derivative: Derivative) -> Image.Image:
    im = Image.open(io.BytesIO(derivative.data))
    im.load()
    return im


def centre_pixel(derivative: Derivative) -> tuple[int, ...]:
    im = reopen(derivative)
    return im.getpixel((im.width // 2, im.height // 2))  # type: ignore[return-value]


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 6) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def assert_metadata_free(derivative: Derivative) -> None:
    data = derivative.data
    assert data.startswith(b"\xff\xd8\xff")
    assert b"Exif\x00\x00" not in data
    assert b"http://ns.adobe.com/xap" not in data
    assert b"ICC_PROFILE" not in data
    im = reopen(derivative)
    assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (derivative.width, derivative.height))
    assert len(im.getexif()) == 0
    assert not {"exif", "icc_profile", "xmp", "comment"} & im.info.keys()
    # Only the JFIF header Pillow's encoder always writes: no APPn or COM segment carries anything else.
    assert [marker for marker, _ in im.applist] in ([], ["APP0"])


def assert_well_formed(result: ProcessedImage, limits: ImageLimits = ImageLimits()) -> None:
    assert result.width > 0 and result.height > 0
    for derivative, bound in ((result.display, limits.display_max_side), (result.thumbnail, 320)):
        assert_metadata_free(derivative)
        assert max(derivative.width, derivative.height) <= bound
    assert len(result.perceptual_hash) == 16
    int(result.perceptual_hash, 16)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def zero_png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of zeros, compressed in blocks so it never exists uncompressed in memory."""
    row = bytes(1 + (width + 7) // 8)  # filter byte "none", then the packed row
    rows_per_block = max(1, 4_000_000 // len(row))
    compressor = zlib.compressobj(9)
    idat = [compressor.compress(row * min(rows_per_block, height - y)) for y in range(0, height, rows_per_block)]
    idat.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(idat)) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def gradient(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A picture with structure (so hashes and orientation mean something), not a flat fill."""
    horizontal = Image.linear_gradient("L").resize(size)
    vertical = Image.linear_gradient("L").rotate(90).resize(size)
    return Image.merge("RGB", (horizontal, vertical, Image.new("L", size, 90)))


def exif_jpeg(
    ifd0: dict[int, Any] | None = None,
    sub_ifd: dict[int, Any] | None = None,
    gps: dict[int, Any] | None = None,
) -> bytes:
    exif = Image.Exif()
    exif.update(ifd0 or {})
    if sub_ifd:
        exif.get_ifd(ExifTags.IFD.Exif).update(sub_ifd)
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps)
    return encode(gradient(), exif=exif)


def dms(*parts: tuple[int, int]) -> tuple[IFDRational, ...]:
    return tuple(IFDRational(numerator, denominator) for numerator, denominator in parts)


# --------------------------------------------------------------------------------------------------------------
# Sniffing


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heif"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf", "heif"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", None),  # AVIF in HEIF clothing
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00mif1avifmiaf", None),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # an MP4 video
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"GIF89a\x01\x00\x01\x00", None),
        (b"hello, this is text", None),
        (b"\xff\xd8", None),
        (b"", None),
    ],
)
def test_sniff_format_reads_magic_bytes_only(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected


def test_text_file_named_jpg_is_not_an_image() -> None:
    with pytest.raises(NotAnImage) as excinfo:
        process("隐患照片.jpg 其实是文本".encode())
    assert excinfo.value.code == "not_an_image"
    assert excinfo.value.status == 422


def test_empty_upload_is_not_an_image() -> None:
    with pytest.raises(NotAnImage):
        process(b"")


@pytest.mark.parametrize(("fmt", "detected"), [("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tiff")])
def test_recognised_but_unaccepted_formats_are_unsupported(fmt: str, detected: str) -> None:
    with pytest.raises(UnsupportedImageType) as excinfo:
        process(encode(gradient(), fmt))
    assert excinfo.value.code == "unsupported_image_type"
    assert excinfo.value.details == {"detected": detected}


# --------------------------------------------------------------------------------------------------------------
# The real photos


def test_sample_photos_are_present() -> None:
    assert len(SAMPLES) >= 20, f"expected the shared sample photos under {PHOTOS}"
    assert set(SAMPLES) >= DAMAGED


@pytest.mark.parametrize("relative", [s for s in SAMPLES if s not in DAMAGED])
def test_every_readable_sample_processes_into_clean_derivatives(relative: str) -> None:
    result = process(photo_bytes(relative))
    assert_well_formed(result)
    assert result.format == ("heif" if relative.startswith("heic/") else "jpeg")


def test_phone_photo_keeps_its_dimensions_and_gets_a_dct_scaled_display_copy() -> None:
    result = process(photo_bytes("jpg/mobile/jolla.jpg"))
    assert (result.format, result.mime_type, result.width, result.height) == ("jpeg", "image/jpeg", 3264, 2448)
    # Decoded at 1/2 scale (1632 >= 3/4 of 2048), so no Lanczos pass over 8 MP.
    assert (result.display.width, result.display.height) == (1632, 1224)
    assert (result.thumbnail.width, result.thumbnail.height) == (320, 240)
    assert result.exif.captured_at == datetime(2014, 9, 21, 16, 0, 56)


def test_display_copy_respects_a_smaller_display_limit() -> None:
    limits = ImageLimits(display_max_side=1000, thumbnail_max_side=100)
    result = process(photo_bytes("jpg/mobile/jolla.jpg"), limits)
    assert (result.display.width, result.display.height) == (816, 612)  # 1/4 DCT scale, 816 >= 3/4 of 1000
    assert (result.thumbnail.width, result.thumbnail.height) == (100, 75)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_orientations_come_out_upright(orientation: int) -> None:
    def small(derivative: Derivative) -> Image.Image:
        return reopen(derivative).convert("L").resize((32, 24), Image.Resampling.BOX)

    reference = process(photo_bytes("jpg/orientation/landscape_1.jpg"))
    result = process(photo_bytes(f"jpg/orientation/landscape_{orientation}.jpg"))
    assert result.exif.orientation == orientation
    assert (result.width, result.height) == (600, 450)
    assert result.display.width > result.display.height
    assert result.thumbnail.width > result.thumbnail.height
    # Same scene: under 1 grey level apart when upright, 40-70 apart when left as stored.
    difference = ImageStat.Stat(ImageChops.difference(small(reference.display), small(result.display)))
    assert difference.mean[0] < 8


# Read with a separate struct-based walk of each file's GPS IFD: (numerator, denominator) per D/M/S, refs N and E.
GPS_SAMPLES = {
    "DSCN0010": (((43, 1), (28, 1), (281400000, 100000000)), ((11, 1), (53, 1), (645599999, 100000000))),
    "DSCN0012": (((43, 1), (28, 1), (176399999, 100000000)), ((11, 1), (53, 1), (742199999, 100000000))),
    "DSCN0021": (((43, 1), (28, 1), (149399999, 100000000)), ((11, 1), (53, 1), (433799999, 100000000))),
    "DSCN0025": (((43, 1), (28, 1), (611400000, 100000000)), ((11, 1), (52, 1), (538859999, 10000000))),
}


@pytest.mark.parametrize("name", sorted(GPS_SAMPLES))
def test_gps_photos_give_their_position(name: str) -> None:
    def degrees(parts: tuple[tuple[int, int], ...]) -> float:
        return sum(n / d / 60**i for i, (n, d) in enumerate(parts))

    latitude, longitude = (degrees(parts) for parts in GPS_SAMPLES[name])
    exif = process(photo_bytes(f"jpg/gps/{name}.jpg")).exif
    assert exif.latitude == pytest.approx(latitude, abs=1e-9)
    assert exif.longitude == pytest.approx(longitude, abs=1e-9)
    # Plausibility, independent of the arithmetic: all four were taken in Arezzo, Tuscany.
    assert 43.46 < exif.latitude < 43.48 and 11.87 < exif.longitude < 11.89  # type: ignore[operator]
    assert exif.captured_at is not None and exif.captured_at.date().isoformat() == "2008-10-22"
    assert exif.captured_at.tzinfo is None


def test_gps_block_without_a_position_gives_none() -> None:
    exif = process(photo_bytes("jpg/Canon_40D.jpg")).exif
    assert (exif.longitude, exif.latitude) == (None, None)
    assert exif.captured_at == datetime(2008, 5, 30, 15, 56, 1)


def test_photo_without_exif_has_no_gps_and_default_orientation() -> None:
    exif = process(photo_bytes("jpg/xmp/no_exif.jpg")).exif
    assert (exif.longitude, exif.latitude) == (None, None)


@pytest.mark.parametrize("relative", [s for s in SAMPLES if s.startswith(("jpg/invalid/", "jpg/tests/"))])
def test_broken_exif_neither_crashes_nor_stalls(relative: str) -> None:
    started = time.perf_counter()
    result = process(photo_bytes(relative))
    assert time.perf_counter() - started < 5
    assert isinstance(result.exif, ExifFacts)
    assert result.exif.orientation in (None, *range(1, 9))


def test_damaged_camera_jpeg_is_refused() -> None:
    # Pillow "decodes" corrupted.jpg without an error: 16 KiB of its scan data are 0xFF (an erased flash page),
    # libjpeg resynchronises on the next restart marker, every later block lands in the wrong place and the
    # last 24 rows come out flat grey. That is not a faithful picture of anything, so it is not evidence.
    with pytest.raises(ImageCorrupt):
        process(photo_bytes("jpg/corrupted.jpg"))


def test_heif_sample_processes() -> None:
    result = process(photo_bytes("heic/samplefilehub.heif"))
    assert (result.format, result.mime_type, result.width, result.height) == ("heif", "image/heic", 640, 426)
    assert_well_formed(result)


# --------------------------------------------------------------------------------------------------------------
# Truncation and damage


def test_truncated_jpeg_is_corrupt() -> None:
    data = photo_bytes("jpg/gps/DSCN0010.jpg")
    with pytest.raises(ImageCorrupt):
        process(data[: len(data) * 2 // 3])


def test_truncated_jpeg_is_corrupt_even_if_someone_enabled_truncated_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = photo_bytes("jpg/gps/DSCN0010.jpg")
    with pytest.raises(ImageCorrupt):
        process(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # their setting is back once we are done


def test_truncated_png_is_corrupt() -> None:
    data = encode(Image.effect_noise((300, 200), 40), "PNG")
    with pytest.raises(ImageCorrupt):
        process(data[: len(data) // 2])


def test_restart_marker_jpeg_passes_the_scan_check() -> None:
    for params in ({"restart_marker_blocks": 3}, {"restart_marker_rows": 1, "subsampling": 0}):
        assert_well_formed(process(encode(Image.effect_noise((333, 211), 50).convert("RGB"), **params)))
    assert_well_formed(process(encode(Image.effect_noise((333, 211), 50), restart_marker_blocks=5)))


def test_restart_marker_jpeg_missing_data_is_corrupt() -> None:
    data = encode(Image.effect_noise((640, 480), 50).convert("RGB"), restart_marker_blocks=4)
    middle = len(data) // 2
    erased = data[:middle] + b"\xff" * 4096 + data[middle + 4096 :]  # like corrupted.jpg
    cut_short = data[:middle] + b"\xff\xd9"  # truncated, then an end marker appended
    for damaged in (erased, cut_short):
        with pytest.raises(ImageCorrupt):
            process(damaged)


def test_re_terminated_jpeg_without_restart_markers_is_accepted() -> None:
    # Deliberate limit: without restart markers only a Huffman decode could tell a cut-short scan from a
    # complete one, and libjpeg pads it grey without complaint. Plain truncation (no end marker) is refused.
    data = photo_bytes("jpg/gps/DSCN0010.jpg")
    result = process(data[: len(data) * 2 // 3] + b"\xff\xd9")
    assert (result.width, result.height) == (640, 480)


# --------------------------------------------------------------------------------------------------------------
# Size limits


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    return zero_png(50_000, 50_000)


def test_png_bomb_is_refused_before_any_pixel_is_decoded(bomb_png: bytes) -> None:
    assert len(bomb_png) < 1_000_000  # 2.5 gigapixels on the wire in a few hundred KB
    gc.collect()
    me = psutil.Process()
    rss_before = me.memory_info().rss
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as excinfo:
        process(bomb_png)
    elapsed = time.perf_counter() - started
    assert excinfo.value.status == 413 and excinfo.value.code == "image_too_large"
    assert me.memory_info().rss - rss_before < 50 * 2**20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 50 * 2**10
    assert elapsed < 0.5


def test_bomb_is_refused_by_our_limit_even_with_pillows_check_disabled(
    bomb_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImageTooLarge) as excinfo:
        process(bomb_png)
    assert excinfo.value.details["width"] == 50_000


def test_image_above_our_limit_but_under_pillows_is_refused() -> None:
    with pytest.raises(ImageTooLarge) as excinfo:
        process(zero_png(8_000, 8_000))  # 64 MP: Pillow would not even warn
    assert excinfo.value.__cause__ is None
    assert excinfo.value.details == {"width": 8000, "height": 8000, "max_pixels": 50_000_000, "max_side": 20_000}


def test_pillows_bomb_warning_is_an_error_here_and_only_here() -> None:
    filters_before = list(warnings.filters)
    with pytest.raises(ImageTooLarge) as excinfo:
        process(zero_png(10_000, 10_000), ImageLimits(max_pixels=200_000_000))
    assert isinstance(excinfo.value.__cause__, Image.DecompressionBombWarning)
    assert warnings.filters == filters_before


@pytest.mark.parametrize(
    "limits", [ImageLimits(max_pixels=3264 * 2448 - 1), ImageLimits(max_side=3000)], ids=["pixels", "side"]
)
def test_configured_limits_apply_to_the_declared_size(limits: ImageLimits) -> None:
    with pytest.raises(ImageTooLarge):
        process(photo_bytes("jpg/mobile/jolla.jpg"), limits)


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        ImageLimits(max_pixels=0)
    with pytest.raises(ValueError):
        ImageLimits(jpeg_quality=100)


# --------------------------------------------------------------------------------------------------------------
# Pixel modes and formats


@pytest.mark.parametrize(
    ("name", "make", "fmt", "expected"),
    [
        ("rgba transparent", lambda: Image.new("RGBA", (64, 48), (255, 0, 0, 0)), "PNG", (255, 255, 255)),
        ("rgba opaque", lambda: Image.new("RGBA", (64, 48), (0, 0, 255, 255)), "PNG", (0, 0, 255)),
        ("la transparent", lambda: Image.new("LA", (64, 48), (0, 0)), "PNG", (255, 255, 255)),
        ("palette transparent", lambda: _palette(transparent=True), "PNG", (255, 255, 255)),
        ("palette opaque", lambda: _palette(transparent=False), "PNG", (0, 128, 0)),
        ("16-bit grey", lambda: Image.new("I;16", (64, 48), 32768), "PNG", (128, 128, 128)),
        ("1-bit", lambda: Image.new("1", (64, 48), 1), "PNG", (255, 255, 255)),
        ("cmyk jpeg", lambda: Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        ("grey jpeg", lambda: Image.new("L", (64, 48), 200), "JPEG", (200, 200, 200)),
        ("webp alpha", lambda: Image.new("RGBA", (64, 48), (0, 0, 0, 0)), "WEBP", (255, 255, 255)),
    ],
)
def test_every_mode_becomes_rgb_on_white(name: str, make: Any, fmt: str, expected: tuple[int, int, int]) -> None:
    result = process(encode(make(), fmt))
    assert_well_formed(result)
    assert close_to(centre_pixel(result.display), expected), name
    assert close_to(centre_pixel(result.thumbnail), expected), name


def _palette(*, transparent: bool) -> Image.Image:
    im = Image.new("P", (64, 48), 1)
    im.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    if transparent:
        im.info["transparency"] = 1
    return im


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("WEBP", "image/webp"), ("JPEG", "image/jpeg")])
def test_exif_orientation_is_applied_in_every_format(fmt: str, mime: str) -> None:
    stored = Image.new("RGB", (80, 40), (255, 0, 0))
    stored.paste((0, 0, 255), (40, 0, 80, 40))  # left red, right blue
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # display rotated 90 degrees clockwise: left becomes top
    result = process(encode(stored, fmt, exif=exif, quality=95))
    assert (result.format, result.mime_type, result.exif.orientation) == (fmt.lower(), mime, 6)
    assert (result.width, result.height, result.display.width, result.display.height) == (40, 80, 40, 80)
    upright = reopen(result.display)
    assert close_to(upright.getpixel((20, 10)), (255, 0, 0), 12)  # type: ignore[arg-type]
    assert close_to(upright.getpixel((20, 70)), (0, 0, 255), 12)  # type: ignore[arg-type]


def test_multi_picture_jpeg_gives_its_first_picture() -> None:
    first, second = Image.new("RGB", (300, 200), (200, 30, 30)), Image.new("RGB", (300, 200), (30, 200, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "SECRET-CAM"
    data = encode(first, "MPO", save_all=True, append_images=[second], exif=exif)
    result = process(data)
    assert (result.format, result.mime_type) == ("jpeg", "image/jpeg")
    assert close_to(centre_pixel(result.display), (200, 30, 30))
    assert_metadata_free(result.display)
    assert b"SECRET-CAM" not in result.display.data


def test_metadata_of_every_kind_stays_out_of_derivatives() -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: dms((31, 1), (14, 1), (0, 1))}
    )
    exif[ExifTags.Base.BodySerialNumber] = "CAMERA-SERIAL-123"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(gradient(), exif=exif, xmp=xmp, comment=b"reporter phone 13800000000", icc_profile=icc)
    result = process(data)
    for derivative in (result.display, result.thumbnail):
        assert_metadata_free(derivative)
        assert b"13800000000" not in derivative.data and b"CAMERA-SERIAL" not in derivative.data


def test_embedded_colour_profile_is_applied_before_it_is_dropped() -> None:
    # The sRGB profile renamed, so that it is not skipped as "already sRGB": converting must keep the colours.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    renamed = srgb.replace("sRGB".encode("utf-16-be"), "Test".encode("utf-16-be"))
    assert renamed != srgb
    result = process(encode(Image.new("RGB", (64, 48), (10, 200, 30)), icc_profile=renamed))
    assert close_to(centre_pixel(result.display), (10, 200, 30))
    assert_metadata_free(result.display)


def test_broken_icc_profile_is_ignored() -> None:
    result = process(encode(Image.new("RGB", (64, 48), (10, 200, 30)), icc_profile=b"not a profile" * 20))
    assert close_to(centre_pixel(result.display), (10, 200, 30))


def test_concurrent_calls_keep_truncation_strict_and_restore_the_flag() -> None:
    good = photo_bytes("jpg/gps/DSCN0010.jpg")
    truncated = good[: len(good) // 2]
    flag_before = ImageFile.LOAD_TRUNCATED_IMAGES

    def one(index: int) -> float | None:
        if index % 2:
            with pytest.raises(ImageCorrupt):
                process(truncated)
            return None
        return process(good).exif.latitude

    with ThreadPoolExecutor(max_workers=4) as pool:
        latitudes = [value for value in pool.map(one, range(16)) if value is not None]
    assert len(latitudes) == 8 and len(set(latitudes)) == 1
    assert ImageFile.LOAD_TRUNCATED_IMAGES is flag_before


def test_source_stream_is_left_open_and_need_not_be_seekable() -> None:
    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            return self._inner.readinto(buffer)

    data = photo_bytes("jpg/gps/DSCN0010.jpg")
    stream = io.BufferedReader(OneWay(data))
    result = process_image(stream)
    assert not stream.closed
    assert result.exif.latitude is not None


# --------------------------------------------------------------------------------------------------------------
# EXIF facts


def test_capture_time_with_offset_is_aware() -> None:
    data = exif_jpeg(
        sub_ifd={
            ExifTags.Base.DateTimeOriginal: "2024:05:01 08:30:00",
            ExifTags.Base.OffsetTimeOriginal: "+08:00",
            ExifTags.Base.SubsecTimeOriginal: "25",
        }
    )
    captured = process(data).exif.captured_at
    assert captured == datetime(2024, 5, 1, 8, 30, 0, 250_000, tzinfo=timezone(timedelta(hours=8)))
    assert captured is not None and captured.utcoffset() == timedelta(hours=8)


def test_capture_time_without_offset_is_naive_and_falls_back_in_order() -> None:
    both = exif_jpeg(
        ifd0={ExifTags.Base.DateTime: "2024:05:03 10:00:00"},
        sub_ifd={ExifTags.Base.DateTimeDigitized: "2024:05:02 09:00:00"},
    )
    assert process(both).exif.captured_at == datetime(2024, 5, 2, 9, 0, 0)
    only_ifd0 = exif_jpeg(ifd0={ExifTags.Base.DateTime: "2024:05:03 10:00:00"})
    assert process(only_ifd0).exif.captured_at == datetime(2024, 5, 3, 10, 0, 0)


@pytest.mark.parametrize("stamp", ["0000:00:00 00:00:00", "    :  :     :  :  ", "yesterday", "2024:13:45 99:00:00"])
def test_garbled_capture_time_is_none_and_costs_nothing_else(stamp: str) -> None:
    data = exif_jpeg(
        ifd0={ExifTags.Base.Orientation: 3},
        sub_ifd={ExifTags.Base.DateTimeOriginal: stamp, ExifTags.Base.OffsetTimeOriginal: "+08:00"},
    )
    exif = process(data).exif
    assert exif.captured_at is None
    assert exif.orientation == 3


def test_southern_and_western_hemispheres_are_negative() -> None:
    data = exif_jpeg(
        gps={
            ExifTags.GPS.GPSLatitudeRef: "S",
            ExifTags.GPS.GPSLatitude: dms((33, 1), (52, 1), (1234, 100)),
            ExifTags.GPS.GPSLongitudeRef: "W",
            ExifTags.GPS.GPSLongitude: dms((70, 1), (30, 1), (0, 1)),
        }
    )
    exif = process(data).exif
    assert exif.latitude == pytest.approx(-(33 + 52 / 60 + 12.34 / 3600))
    assert exif.longitude == pytest.approx(-70.5)


BEIJING = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: dms((39, 1), (54, 1), (2700, 100)),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: dms((116, 1), (23, 1), (1750, 100)),
}


@pytest.mark.parametrize(
    ("change", "has_position"),
    [
        ({}, True),
        ({ExifTags.GPS.GPSLatitudeRef: None, ExifTags.GPS.GPSLongitudeRef: None}, True),  # read as N/E
        ({ExifTags.GPS.GPSLatitude: dms((95, 1), (0, 1), (0, 1))}, False),
        ({ExifTags.GPS.GPSLongitude: dms((181, 1), (0, 1), (0, 1))}, False),
        ({ExifTags.GPS.GPSLatitude: dms((39, 0), (54, 1), (27, 1))}, False),  # zero denominator
        ({ExifTags.GPS.GPSLatitude: dms((39, 1), (75, 1), (27, 1))}, False),  # 75 minutes
        ({ExifTags.GPS.GPSLatitudeRef: "Q"}, False),
        ({ExifTags.GPS.GPSLongitude: None}, False),
        ({ExifTags.GPS.GPSStatus: "V"}, False),  # receiver says: no fix
        (
            {
                ExifTags.GPS.GPSLatitude: dms((0, 1), (0, 1), (0, 1)),
                ExifTags.GPS.GPSLongitude: dms((0, 1), (0, 1), (0, 1)),
            },
            False,
        ),
    ],
)
def test_gps_position_is_all_or_nothing(change: dict[int, Any], has_position: bool) -> None:
    gps = {tag: value for tag, value in {**BEIJING, **change}.items() if value is not None}
    exif = process(exif_jpeg(gps=gps)).exif
    if has_position:
        assert exif.latitude == pytest.approx(39.9075)
        assert exif.longitude == pytest.approx(116 + 23 / 60 + 17.5 / 3600)
    else:
        assert (exif.longitude, exif.latitude) == (None, None)


@pytest.mark.parametrize("value", [0, 9, 300])
def test_out_of_range_orientation_is_none_and_leaves_pixels_alone(value: object) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = value
    result = process(encode(gradient((160, 120)), exif=exif))
    assert result.exif.orientation is None
    assert (result.width, result.height) == (160, 120)


# --------------------------------------------------------------------------------------------------------------
# Perceptual hash


@pytest.mark.parametrize("relative", ["jpg/mobile/jolla.jpg", "jpg/gps/DSCN0010.jpg", "jpg/xmp/no_exif.jpg"])
def test_dhash_survives_a_smaller_recompressed_copy(relative: str) -> None:
    original = Image.open(io.BytesIO(photo_bytes(relative)))
    copy = original.resize((original.width // 2, original.height // 2), Image.Resampling.BICUBIC)
    assert (
        hamming(process(photo_bytes(relative)).perceptual_hash, process(encode(copy, quality=60)).perceptual_hash) <= 6
    )


def test_dhash_tells_different_scenes_apart() -> None:
    scenes = ["jpg/mobile/jolla.jpg", "jpg/gps/DSCN0010.jpg", "jpg/orientation/landscape_1.jpg",
              "jpg/xmp/no_exif.jpg", "jpg/Canon_40D.jpg", "jpg/tests/36-memory_error.jpg"]  # fmt: skip
    hashes = {scene: process(photo_bytes(scene)).perceptual_hash for scene in scenes}
    for a, b in itertools.combinations(scenes, 2):
        assert hamming(hashes[a], hashes[b]) > 6, (a, b)


def test_dhash_ignores_orientation_metadata_because_it_hashes_the_upright_image() -> None:
    hashes = {process(photo_bytes(f"jpg/orientation/landscape_{n}.jpg")).perceptual_hash for n in range(1, 9)}
    assert max(hamming(a, b) for a, b in itertools.combinations(hashes, 2)) <= 2


# --------------------------------------------------------------------------------------------------------------
# Hostile bytes: a ProcessedImage or an intake error, never anything else


def outcome(data: bytes) -> ProcessedImage | None:
    try:
        result = process(data)
    except INTAKE_ERRORS:
        return None
    assert_well_formed(result)
    return result


MAGIC_HEADS = [
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe1\x00\x40Exif\x00\x00II*\x00\x08\x00\x00\x00",
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"RIFF\x00\x01\x00\x00WEBPVP8L",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    b"GIF89a",
]
SMALL_JPEG = photo_bytes("jpg/gps/DSCN0010.jpg") if (PHOTOS / "jpg/gps/DSCN0010.jpg").is_file() else b""


@HYPOTHESIS
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    outcome(data)


@HYPOTHESIS
@given(st.sampled_from(MAGIC_HEADS), st.binary(max_size=4096))
def test_random_bytes_behind_accepted_magic(head: bytes, tail: bytes) -> None:
    outcome(head + tail)


@HYPOTHESIS
@given(st.data())
def test_random_truncations_of_a_real_jpeg(data: st.DataObject) -> None:
    assert SMALL_JPEG, "sample photo missing"
    outcome(SMALL_JPEG[: data.draw(st.integers(0, len(SMALL_JPEG)))])


@HYPOTHESIS
@given(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_byte_edits_of_a_real_jpeg(edits: list[tuple[float, int]]) -> None:
    assert SMALL_JPEG, "sample photo missing"
    data = bytearray(SMALL_JPEG)
    for where, value in edits:
        data[int(where * len(data))] = value
    outcome(bytes(data))
