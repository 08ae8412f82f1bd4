"""Turn uploaded photo bytes into evidence facts and metadata-free derivatives.

Pure: no storage, no database, no web framework. Everything here treats the input as hostile, because it is
whatever a phone (or anybody with curl) sends. Three rules follow from that:

* Only the decoder of the format the magic bytes name may run, and only after the size the header declares has
  been checked: a 50,000 x 50,000 PNG of zeros is a few hundred KB on the wire and 2.5 GB once decoded.
* Any failure of a third-party parser on the pixels is the upload's fault (``ImageCorrupt``), never a 500.
  EXIF is weaker still: a broken block only costs us the facts it would have given.
* Derivatives are re-encoded from pixels and carry no metadata at all, so the GPS position and camera serial a
  reporter may not know they sent never leave the original object, which only staff can reach.

Process-wide state is read here, never reconfigured, with three documented exceptions: the HEIF opener is
registered once, lazily (idempotent); ``ImageFile.LOAD_TRUNCATED_IMAGES`` is held at False while a decode of ours
runs (``_strict_truncation``); and ``DecompressionBombWarning`` is an error inside ``warnings.catch_warnings``
while we open a file (``_decoder_guard``, which also explains the thread-safety caveat).
"""

from __future__ import annotations

import functools
import io
import math
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, Final, Literal, TypeVar

from PIL import ExifTags, Image, ImageCms, ImageFile

from app.core.errors import DomainError
from app.intake.errors import ImageCorrupt, ImageTooComplex, ImageTooLarge, NotAnImage, UnsupportedImageType

ImageFormat = Literal["jpeg", "png", "webp", "heif"]
T = TypeVar("T")


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 50_000_000  # refuse above this (width*height as declared in the header)
    max_side: int = 20_000  # refuse if either side is longer
    display_max_side: int = 2048
    thumbnail_max_side: int = 320
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        sizes = (self.max_pixels, self.max_side, self.display_max_side, self.thumbnail_max_side)
        if min(sizes) < 1 or not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"invalid image limits: {self!r}")


@dataclass(frozen=True)
class ExifFacts:
    captured_at: datetime | None  # aware only if the camera recorded an offset; naive = its wall clock
    longitude: float | None  # WGS-84 decimal degrees
    latitude: float | None
    orientation: int | None  # 1..8


NO_EXIF: Final = ExifFacts(captured_at=None, longitude=None, latitude=None, orientation=None)


@dataclass(frozen=True)
class Derivative:
    data: bytes  # JPEG without any metadata segment, pixels upright
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedImage:
    format: ImageFormat
    mime_type: str  # of the original
    width: int  # upright dimensions of the original
    height: int
    exif: ExifFacts
    display: Derivative
    thumbnail: Derivative
    perceptual_hash: str  # 16 hex digits: 64-bit dHash of the upright image


# ------------------------------------------------------------------------------------------------------------
# Sniffing

_HEAD_SIZE: Final = 64
_PILLOW_FORMAT: Final[dict[str, str]] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heif": "HEIF"}
_SIMPLE_MIME: Final[dict[str, str]] = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Major brand -> MIME type, as ISO/IEC 23008-12 Annex C registers them.
_HEIF_MIME: Final[dict[bytes, str]] = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"hevc": "image/heic-sequence",
    b"hevx": "image/heic-sequence",
    b"mif1": "image/heif",
    b"msf1": "image/heif-sequence",
}
_HEVC_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
# Recognised only to give a better message than "not an image".
_UNSUPPORTED_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"8BPS", "psd"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jpeg2000"),
    (b"\xff\x4f\xff\x51", "jpeg2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "jxl"),
    (b"\xff\x0a", "jxl"),
    (b"qoif", "qoi"),
)
_BMP_HEADER_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})


def sniff_format(head: bytes) -> ImageFormat | None:
    """The accepted format the magic bytes at the start of a file name, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if _heif_brand(head) is not None:
        return "heif"
    return None


def _ftyp_brands(head: bytes) -> tuple[bytes, frozenset[bytes]] | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    end = min(int.from_bytes(head[:4], "big"), len(head))
    compatible = frozenset(head[i : i + 4] for i in range(16, end - 3, 4))
    return head[8:12], compatible


def _heif_brand(head: bytes) -> bytes | None:
    brands = _ftyp_brands(head)
    if brands is None or brands[0] not in _HEIF_MIME:
        return None
    major, compatible = brands
    # "mif1" only says "some image in a HEIF container"; AVIF files use it too, and we decode HEVC only.
    if major in (b"mif1", b"msf1") and compatible & _AVIF_BRANDS and not compatible & _HEVC_BRANDS:
        return None
    return major


def _sniff_unsupported(head: bytes) -> str | None:
    for magic, name in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            return name
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "bmp"
    brands = _ftyp_brands(head)
    if brands is not None and (brands[1] | {brands[0]}) & _AVIF_BRANDS:
        return "avif"
    return None


def _identify(head: bytes) -> tuple[ImageFormat, str]:
    fmt = sniff_format(head)
    if fmt is None:
        unsupported = _sniff_unsupported(head)
        if unsupported is not None:
            raise UnsupportedImageType(detected=unsupported)
        raise NotAnImage()
    if fmt == "heif":
        return fmt, _HEIF_MIME[head[8:12]]
    return fmt, _SIMPLE_MIME[fmt]


# ------------------------------------------------------------------------------------------------------------
# Decoder guard rails

_truncation_lock = threading.Lock()
_strict_decodes = 0
_saved_load_truncated = False


@contextmanager
def _strict_truncation() -> Iterator[None]:
    """Hold ``ImageFile.LOAD_TRUNCATED_IMAGES`` at False while any of our decodes runs.

    Pillow reads the flag from module state at decode time, so someone setting it True elsewhere would make
    truncated uploads decode as grey-padded "evidence". Counting concurrent decodes (uploads run in a thread
    pool) lets the last one out restore whatever value the process had before; other code decoding at the
    same moment sees False too, which is the safe side.
    """
    global _strict_decodes, _saved_load_truncated
    with _truncation_lock:
        if _strict_decodes == 0:
            _saved_load_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
        _strict_decodes += 1
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        with _truncation_lock:
            _strict_decodes -= 1
            if _strict_decodes == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _saved_load_truncated


@contextmanager
def _decoder_guard() -> Iterator[None]:
    """Translate whatever a decoder raises on hostile bytes into an intake error.

    ``catch_warnings`` swaps the process-wide filter list and is not thread-safe before Python 3.14; the
    worst an interleaving can do is leave our "DecompressionBombWarning is an error" filter installed, which
    is harmless because ``_check_size`` refuses those images anyway: the filter is a second line, not the
    limit.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _strict_truncation():
            try:
                yield
            except DomainError:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
                # MemoryError too: within the limits, a picture can still need more than this worker has.
                raise ImageTooLarge() from exc
            except Exception as exc:
                # A parser of untrusted bytes can fail in any way (OSError, SyntaxError, struct.error, ...);
                # each means the same thing to the reporter: we cannot read this picture.
                raise ImageCorrupt() from exc


@functools.cache
def _register_heif() -> None:
    # Deferred so that processes which never see a HEIC do not load libheif.
    import pillow_heif

    pillow_heif.register_heif_opener()


def _check_size(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageCorrupt()
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise ImageTooLarge(width=width, height=height, max_pixels=limits.max_pixels, max_side=limits.max_side)


# ------------------------------------------------------------------------------------------------------------
# JPEG scan integrity


@dataclass(frozen=True)
class _Frame:
    mcus: int  # minimum coded units in one complete interleaved scan
    components: int


_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SEQUENTIAL_SOF: Final = frozenset({0xC0, 0xC1})
_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xD8)})
_MARKER_IN_SCAN: Final = re.compile(rb"\xff+([^\x00\xff])")


# A progressive JPEG decodes every scan over the whole image: a scan of a few dozen bytes can cost as much as a
# large image's decode. Encoders write up to about a dozen (libjpeg's standard script: 10 for colour); a file of
# 153 KB repeating one scan 200 times took 4.7 s to decode, and 10 MB of them would take an hour.
MAX_JPEG_SCANS: Final = 100
# The next marker after a scan's entropy-coded data: 0xFF followed by neither a stuffed zero nor a restart marker.
_SEGMENT_AFTER_SCAN: Final = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, offset, length) of each segment of a JPEG up to EOI, without decoding: fill bytes and standalone
    markers are stepped over, and after a scan (SOS) its entropy-coded data is skipped to the next marker that is
    not a restart marker, with one regular-expression search (linear, C speed)."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or marker in _STANDALONE_MARKERS:
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:  # EOI
            return
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield marker, pos, length
        pos += 2 + length
        if marker == 0xDA:
            following = _SEGMENT_AFTER_SCAN.search(data, pos)
            if following is None:
                return
            pos = following.end() - 2


def _jpeg_scans(data: bytes, stop_after: int) -> int:
    """The number of scans (SOS segments) in a JPEG, counted up to ``stop_after + 1``."""
    scans = 0
    for marker, _, _ in _jpeg_segments(data):
        scans += marker == 0xDA
        if scans > stop_after:
            break
    return scans


def _jpeg_scan_damaged(data: bytes) -> bool:
    """Whether a JPEG with restart markers lost (or gained) entropy-coded data.

    libjpeg conceals such damage (a lost stretch shifts every later block sideways and greys out the bottom)
    and Pillow reports success, so a decode alone would accept a picture that no longer shows what was taken.
    Restart markers RST0..7 must cycle without gaps and their number follows from the frame size, which makes
    the damage visible without Huffman decoding. Files without restart markers, or with more than one scan
    (progressive), cannot be judged this cheaply and pass; plain truncation is still caught by the decoder.
    """
    scan = _restart_scan(data)
    if scan is None:
        return False
    intervals, scan_start = scan
    seen = 0
    for match in _MARKER_IN_SCAN.finditer(data, scan_start):
        code = match.group(1)[0]
        if not 0xD0 <= code <= 0xD7:
            break
        if code - 0xD0 != seen % 8:
            return True
        seen += 1
    # n intervals are separated by n-1 markers; tolerate one trailing marker from a sloppy encoder.
    return not intervals - 1 <= seen <= intervals


def _restart_scan(data: bytes) -> tuple[int, int] | None:
    """(restart intervals in a complete scan, offset of its first byte) for a single-scan JPEG using DRI."""
    frame, restart_interval = None, 0
    for marker, pos, length in _jpeg_segments(data):
        body = data[pos + 4 : pos + 2 + length]
        if marker in _SOF_MARKERS:
            frame = _parse_frame(body) if marker in _SEQUENTIAL_SOF else None
            if frame is None:
                return None
        elif marker == 0xDD and len(body) >= 2:
            restart_interval = int.from_bytes(body[:2], "big")
        elif marker == 0xDA:
            # A scan holding fewer components than the frame means several scans, which we do not follow.
            if frame is None or not restart_interval or body[:1] != bytes([frame.components]):
                return None
            return -(-frame.mcus // restart_interval), pos + 2 + length
    return None


def _parse_frame(body: bytes) -> _Frame | None:
    if len(body) < 6:
        return None
    height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
    factors = [byte for i, byte in enumerate(body[6 : 6 + 3 * count]) if i % 3 == 1]
    if not (height and width and count) or len(factors) != count:
        return None  # height 0 means a DNL marker defines it later: too rare to follow
    if count == 1:  # a lone component is coded in 8x8 blocks whatever its sampling factors say
        return _Frame(-(-width // 8) * -(-height // 8), 1)
    h_max, v_max = max(f >> 4 for f in factors), max(f & 0x0F for f in factors)
    if not (1 <= h_max <= 4 and 1 <= v_max <= 4):
        return None
    return _Frame(-(-width // (8 * h_max)) * -(-height // (8 * v_max)), count)


# ------------------------------------------------------------------------------------------------------------
# EXIF facts

_TIMESTAMP: Final = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_UTC_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")
_SUBSECONDS: Final = re.compile(r"\d+")
_B = ExifTags.Base
# Which timestamp says when the picture was taken, best first, each with its offset and sub-second tags.
_TIME_TAGS: Final = (
    (_B.DateTimeOriginal, _B.OffsetTimeOriginal, _B.SubsecTimeOriginal),
    (_B.DateTimeDigitized, _B.OffsetTimeDigitized, _B.SubsecTimeDigitized),
    (_B.DateTime, _B.OffsetTime, _B.SubsecTime),
)
_TRANSPOSE: Final = {  # the table ImageOps.exif_transpose uses
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _attempt(read: Callable[..., T], *args: Any) -> T | None:
    try:
        return read(*args)
    except Exception:
        return None  # broken EXIF costs us this one fact, never the upload


def _read_exif(im: Image.Image) -> ExifFacts:
    exif = _attempt(im.getexif)
    if exif is None:
        return NO_EXIF
    sub_ifd = _attempt(exif.get_ifd, ExifTags.IFD.Exif) or {}
    gps_ifd = _attempt(exif.get_ifd, ExifTags.IFD.GPSInfo) or {}
    position = _attempt(_gps_position, gps_ifd)
    return ExifFacts(
        captured_at=_captured_at(exif, sub_ifd),
        longitude=position[0] if position else None,
        latitude=position[1] if position else None,
        orientation=_attempt(_orientation, exif),
    )


def _orientation(exif: Image.Exif) -> int | None:
    value = exif.get(_B.Orientation)
    return value if type(value) is int and 1 <= value <= 8 else None


def _captured_at(ifd0: Image.Exif, sub_ifd: dict[int, Any]) -> datetime | None:
    for stamp_tag, offset_tag, subsec_tag in _TIME_TAGS:
        # The standard puts DateTime in IFD0 and the others in the Exif IFD; some writers disagree.
        stamp = sub_ifd.get(stamp_tag) or _attempt(ifd0.get, stamp_tag)
        parsed = _attempt(_parse_timestamp, stamp, sub_ifd.get(subsec_tag), sub_ifd.get(offset_tag))
        if parsed is not None:
            return parsed
    return None


def _parse_timestamp(stamp: object, subsec: object, offset: object) -> datetime | None:
    match = _TIMESTAMP.match(_text(stamp))
    if match is None:
        return None
    moment = datetime(*map(int, match.groups()))  # ValueError for the "0000:00:00" of unset clocks
    digits = _text(subsec)
    if _SUBSECONDS.fullmatch(digits):
        moment = moment.replace(microsecond=int(digits[:6].ljust(6, "0")))
    return moment.replace(tzinfo=_utc_offset(_text(offset)))


def _utc_offset(text: str) -> timezone | None:
    match = _UTC_OFFSET.fullmatch(text)
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    if int(hours) > 14 or int(minutes) >= 60:
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def _gps_position(gps: dict[int, Any]) -> tuple[float, float] | None:
    """(longitude, latitude) in WGS-84 degrees, as the EXIF standard prescribes for these tags."""
    if _text(gps.get(ExifTags.GPS.GPSStatus)).upper() == "V":
        return None  # the receiver itself flagged the measurement void
    tags = ExifTags.GPS
    latitude = _coordinate(gps.get(tags.GPSLatitude), gps.get(tags.GPSLatitudeRef), "NS", 90)
    longitude = _coordinate(gps.get(tags.GPSLongitude), gps.get(tags.GPSLongitudeRef), "EW", 180)
    if latitude is None or longitude is None or latitude == longitude == 0:
        return None  # 0,0 is what devices without a fix write, not a spot in the Gulf of Guinea
    return longitude, latitude


def _coordinate(value: object, ref: object, hemispheres: str, limit: int) -> float | None:
    parts = [_number(part) for part in (value if isinstance(value, tuple) else (value,))]
    if not 1 <= len(parts) <= 3 or any(not math.isfinite(p) or p < 0 for p in parts):
        return None
    if any(p >= 60 for p in parts[1:]):
        return None
    degrees = sum(part / 60**i for i, part in enumerate(parts))
    hemisphere = _text(ref).upper()
    # A missing reference is read as N/E: every place this service covers is there, a garbled one is refused.
    if degrees > limit or hemisphere not in ("", *hemispheres):
        return None
    return -degrees if hemisphere == hemispheres[1] else degrees


def _number(value: object) -> float:
    if isinstance(value, tuple) and len(value) == 2:  # (numerator, denominator) from older writers
        return value[0] / value[1]
    return float(value)  # type: ignore[arg-type]  # IFDRational; n/0 becomes NaN and is refused above


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""


# ------------------------------------------------------------------------------------------------------------
# Pixels

# A display copy down to 3/4 of the limit is worth a 2-8x cheaper JPEG decode that also skips most of the
# resize: an 8-MP phone photo comes out 1632 px wide in ~70 ms instead of 2048 px in ~400 ms (2 slow cores).
_DRAFT_SLACK: Final = 0.75
_GRAY_16: Final = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
_WHITE: Final = (255, 255, 255, 255)


@dataclass(frozen=True)
class _Decoded:
    pixels: Image.Image  # upright sRGB, no larger than the display limit
    width: int  # upright size of the original
    height: int
    exif: ExifFacts


def _decode(stream: BinaryIO, fmt: ImageFormat, limits: ImageLimits) -> _Decoded:
    with _decoder_guard(), Image.open(stream, formats=[_PILLOW_FORMAT[fmt]]) as im:
        _check_size(im.size, limits)
        width, height = im.size
        if fmt == "jpeg":
            exif = _read_exif(im)  # from the APP1 segment the header parse already holds
            _draft(im, limits.display_max_side)
            im.load()
        else:
            im.load()
            exif = _read_exif(im)  # a PNG may keep eXIf after the pixels; reading it first would decode twice
        pixels = _display_pixels(im, exif.orientation, limits.display_max_side)
    if exif.orientation in (5, 6, 7, 8):
        width, height = height, width
    return _Decoded(pixels, width, height, exif)


def _draft(im: Image.Image, target: int) -> None:
    """Let libjpeg scale by 1/2, 1/4 or 1/8 while decoding when the display copy is that much smaller."""
    width, height = im.size
    for scale in (8, 4, 2):
        if max(width, height) / scale >= target * _DRAFT_SLACK:
            im.draft("RGB", (max(1, width // scale), max(1, height // scale)))
            return


def _display_pixels(im: Image.Image, orientation: int | None, max_side: int) -> Image.Image:
    icc = im.info.get("icc_profile")
    working = _to_8bit(im)
    # The bounding box is square, so shrinking before the transpose gives the same result on fewer pixels.
    # After load() the draft() inside thumbnail() is a no-op, so pillow_heif cannot swap in an embedded HEIF
    # thumbnail here, which need not show the same picture as the image itself.
    working.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    method = _TRANSPOSE.get(orientation or 1)
    upright = working.transpose(method) if method is not None else working
    return _to_srgb(upright, icc)


def _to_8bit(im: Image.Image) -> Image.Image:
    """An L, RGB or CMYK image: alpha composited on white, 16-bit grey scaled down instead of clipped."""
    if im.mode in _GRAY_16:
        im = im.convert("I").point(lambda value: value / 256, "L")
        im.info.pop("transparency", None)  # a 16-bit colour key means nothing to the 8-bit copy
    elif im.mode == "F":
        im = im.convert("L")
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return im if im.mode in ("L", "RGB", "CMYK") else im.convert("RGB")


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(im: Image.Image, icc: object) -> Image.Image:
    """RGB in sRGB: the profile is about to be dropped, so its meaning is baked into the pixels first."""
    profile = _foreign_profile(icc, im.mode)
    if profile is not None:
        try:
            converted = ImageCms.profileToProfile(im, profile, _srgb(), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a profile that does not fit the pixels: keep the numbers as they are
        if converted is not None:
            return converted
    return im if im.mode == "RGB" else im.convert("RGB")


def _foreign_profile(icc: object, mode: str) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile, unless there is none worth applying (absent, broken, or sRGB already)."""
    if not (isinstance(icc, bytes) and icc and mode in ("RGB", "CMYK")):
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    # Most Android phones tag plain sRGB; converting it to itself costs ~40 ms on a display copy for nothing.
    # iPhones tag Display P3, which does need converting.
    if mode == "RGB" and "srgb" in description.lower():
        return None
    return profile


def _encode(im: Image.Image, quality: int) -> Derivative:
    im.info = {}  # Pillow would copy a JPEG comment (COM) over from info on its own
    buffer = io.BytesIO()
    # Baseline: progressive costs 4x the encode time, and the mini-program shows an image only once loaded.
    im.save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
    return Derivative(data=buffer.getvalue(), width=im.width, height=im.height)


def _dhash(im: Image.Image) -> str:
    """64-bit difference hash: does brightness rise to the right, on a 9x8 grey thumbnail."""
    # A full Lanczos pass (no reducing_gap shortcut): ~10 ms on a display copy and, on the sample photos, at
    # most 2 bits moved by a half-size quality-60 re-encode, against up to 5 with the box pre-reduction.
    small = im.convert("L").resize((9, 8), Image.Resampling.LANCZOS).tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            left = small[row * 9 + col]
            bits = bits << 1 | (small[row * 9 + col + 1] > left)
    return f"{bits:016x}"


# ------------------------------------------------------------------------------------------------------------
# Entry point


def process_image(source: BinaryIO, limits: ImageLimits = ImageLimits()) -> ProcessedImage:
    """Check, decode and re-encode one uploaded photo.

    Reads ``source`` from its current position to the end and never seeks or closes it, so any readable stream
    works. The caller caps the upload size; this function caps the pixels and a JPEG's scans. Raises NotAnImage,
    UnsupportedImageType, ImageTooLarge, ImageTooComplex or ImageCorrupt. CPU-bound (tens to a few hundred ms): run
    it in a worker thread.
    """
    head = source.read(_HEAD_SIZE)
    fmt, mime_type = _identify(head)
    data = head + source.read()
    if fmt == "jpeg" and _jpeg_scans(data, MAX_JPEG_SCANS) > MAX_JPEG_SCANS:
        raise ImageTooComplex(max_scans=MAX_JPEG_SCANS)
    if fmt == "jpeg" and _jpeg_scan_damaged(data):
        raise ImageCorrupt()
    if fmt == "heif":
        _heif_support()
    decoded = _decode(io.BytesIO(data), fmt, limits)
    thumbnail = decoded.pixels.copy()
    thumbnail.thumbnail((limits.thumbnail_max_side,) * 2, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return ProcessedImage(
        format=fmt,
        mime_type=mime_type,
        width=decoded.width,
        height=decoded.height,
        exif=decoded.exif,
        perceptual_hash=_dhash(decoded.pixels),
        display=_encode(decoded.pixels, limits.jpeg_quality),
        thumbnail=_encode(thumbnail, limits.jpeg_quality),
    )


def _heif_support() -> None:
    try:
        _register_heif()
    except ImportError as exc:  # libheif missing from this deployment: say so rather than "corrupt"
        raise UnsupportedImageType(detected="heif") from exc
