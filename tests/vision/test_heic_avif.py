"""HEIC/HEIF and AVIF photos (iPhones' default) decode, ingest and search like their JPEGs.

The HEIC and AVIF files are made at run time from the fixture JPEGs: HEIC with
pillow-heif's encoder, AVIF with Pillow's own.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from facetrace import (
    CorruptImageError,
    FaceTrace,
    ImageTooLargeError,
    Settings,
    UnsupportedFormatError,
)
from facetrace.ingest.pipeline import ItemOutcome
from facetrace.vision.imaging import decode_image, load_image, sniff_isobmff
from tests.conftest import FR

LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pixels": 80_000_000}
FORMATS = ("HEIF", "AVIF")
SUFFIX = {"HEIF": ".heic", "AVIF": ".avif"}
EXIF_ORIENTATION = 0x0112


def encode(img: Image.Image, fmt: str, exif: bytes | None = None) -> bytes:
    """``img`` as HEIC (pillow-heif) or AVIF (Pillow) bytes, with ``exif`` if given."""
    buf = io.BytesIO()
    extra = {} if exif is None else {"exif": exif}
    if fmt == "HEIF":
        pillow_heif.from_pillow(img).save(buf, quality=90, **extra)
    else:
        img.save(buf, format="AVIF", quality=90, **extra)
    return buf.getvalue()


def rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two_people.jpg and its HEIC and AVIF copies, plus a truncated HEIC."""
    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(FR / "two_people.jpg", folder / "two_people.jpg")
    for fmt in FORMATS:
        data = encode(rgb(FR / "two_people.jpg"), fmt)
        (folder / f"two_people{SUFFIX[fmt]}").write_bytes(data)
    heic = (folder / "two_people.heic").read_bytes()
    (folder / "z_truncated.heic").write_bytes(heic[: len(heic) // 2])
    return folder


@pytest.fixture(scope="module")
def obama(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """obama.jpg as HEIC and AVIF files."""
    folder = tmp_path_factory.mktemp("obama")
    out = {}
    for fmt in FORMATS:
        out[fmt] = folder / f"obama{SUFFIX[fmt]}"
        out[fmt].write_bytes(encode(rgb(FR / "obama.jpg"), fmt))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_decodes_to_the_jpegs_size_and_pixels(obama: dict[str, Path], fmt: str) -> None:
    jpeg = load_image(FR / "obama.jpg", **LIMITS)
    img = load_image(obama[fmt], **LIMITS)
    assert img.format == fmt
    assert img.pixels.dtype == np.uint8
    assert img.pixels.shape == jpeg.pixels.shape == (1137, 910, 3)
    assert mean_abs_diff(img.pixels, jpeg.pixels) < 4.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_exif_orientation_6_turns_upright_exactly_once(fmt: str) -> None:
    upright = rgb(FR / "obama.jpg")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored lying on its left side: rotate 90 degrees clockwise
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    img = decode_image(encode(sideways, fmt, exif=exif.tobytes()), **LIMITS)
    assert img.pixels.shape == (1137, 910, 3)
    # Applied twice, the photo would be upside down: same shape, different pixels.
    assert mean_abs_diff(img.pixels, np.asarray(upright)) < 4.0


def test_format_is_told_by_content_not_by_name(obama: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "photo.jpg"
    shutil.copy(obama["HEIF"], renamed)
    assert load_image(renamed, **LIMITS).format == "HEIF"
    assert sniff_isobmff(obama["AVIF"].read_bytes()[:32]) == "AVIF"
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)
    with pytest.raises(UnsupportedFormatError, match="HEIC or AVIF, checked by content"):
        decode_image(mp4, **LIMITS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file_is_a_clear_error(obama: dict[str, Path], fmt: str) -> None:
    data = obama[fmt].read_bytes()
    for cut in (len(data) // 2, 64):
        with pytest.raises(CorruptImageError, match=f"{fmt} data"):
            decode_image(data[:cut], **LIMITS)


def test_heic_declaring_huge_dimensions_is_refused_before_decoding() -> None:
    data = bytearray(encode(Image.new("RGB", (64, 48), (200, 100, 50)), "HEIF"))
    side, one = (20000).to_bytes(4, "big"), (1).to_bytes(4, "big")
    ispe, clap = data.find(b"ispe"), data.find(b"clap")  # size, and the crop shown
    data[ispe + 8 : ispe + 16] = side + side
    if clap >= 0:
        data[clap + 4 : clap + 20] = side + one + side + one
    with pytest.raises(ImageTooLargeError, match="pixel limit"):
        decode_image(bytes(data), **LIMITS)
    with pytest.raises(ImageTooLargeError, match="1000000-pixel limit"):
        decode_image(bytes(data), max_bytes=LIMITS["max_bytes"], max_pixels=1_000_000)


def test_ingest_and_search_like_their_jpeg_originals(
    tmp_path: Path, photos: Path, obama: dict[str, Path]
) -> None:
    # Perceptual deduplication off, so each copy is stored and analysed on its own.
    settings = Settings(home=tmp_path / "home", workers=1, near_duplicate_bits=-1)
    outcomes: dict[str, ItemOutcome] = {}
    with FaceTrace.open(settings) as ft:
        ft.add_source("s", lawful_basis="test")
        ft.ingest([photos], source="s", on_item=lambda o: outcomes.setdefault(Path(o.key).name, o))
        summary = ft.ingest([FR / "obama.jpg"], source="s")
        assert summary.faces_added == 1
        faces = {name: o.faces for name, o in outcomes.items() if o.status == "added"}
        assert faces == {"two_people.jpg": 2, "two_people.heic": 2, "two_people.avif": 2}
        assert "truncated or corrupt" in (outcomes["z_truncated.heic"].error or "")
        for fmt in FORMATS:
            result = ft.search(obama[fmt], case_id="C-1", reason="test", top_k=3)
            assert len(result.faces) == 1
            best = result.faces[0].matches[0]
            assert Path(best.provenance[0].origin).name == "obama.jpg"
            assert best.distance < 0.3
