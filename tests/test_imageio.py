"""Photos in and out without losing depth, alpha, orientation, colour profile or EXIF; never half-written."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from hifacegan.imageio import (
    ImageReadError,
    ImageWriteError,
    Photo,
    apply_orientation,
    read_photo,
    write_photo,
)

RNG = np.random.default_rng(0)


def _pixels(channels: int, dtype=np.uint8, h=23, w=31) -> np.ndarray:
    peak = np.iinfo(dtype).max
    shape = (h, w) if channels == 1 else (h, w, channels)
    return RNG.integers(0, peak + 1, shape, dtype=np.int64).astype(dtype)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_is_exact(tmp_path, channels, dtype):
    pixels = _pixels(channels, dtype)
    path = write_photo(Photo(pixels), tmp_path / "x.png")
    back = read_photo(path)
    assert back.pixels.dtype == dtype
    assert np.array_equal(back.pixels, pixels)


def test_16_bit_png_keeps_icc_and_exif(tmp_path, solvay_photo):
    source = read_photo(solvay_photo)
    assert source.icc_profile and source.exif
    pixels = source.pixels.astype(np.uint16) * 257 + 1
    write_photo(Photo(pixels, icc_profile=source.icc_profile, exif=source.exif), tmp_path / "deep.png")
    back = read_photo(tmp_path / "deep.png")
    assert back.pixels.dtype == np.uint16 and np.array_equal(back.pixels, pixels)
    assert back.icc_profile == source.icc_profile
    assert back.exif == source.exif
    assert Image.open(tmp_path / "deep.png").info["icc_profile"] == source.icc_profile  # others read it too


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_tiff_round_trip(tmp_path, channels):
    pixels = _pixels(channels, np.uint16)
    write_photo(Photo(pixels), tmp_path / "x.tif")
    assert np.array_equal(read_photo(tmp_path / "x.tif").pixels, pixels)


def test_8_bit_png_keeps_icc_exif_and_alpha(tmp_path, solvay_photo):
    source = read_photo(solvay_photo)
    write_photo(source, tmp_path / "copy.png")
    back = read_photo(tmp_path / "copy.png")
    assert np.array_equal(back.pixels, source.pixels)
    assert back.icc_profile == source.icc_profile and back.exif == source.exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_viewers_do(tmp_path, orientation):
    pixels = _pixels(3, h=20, w=36)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif.tobytes())
    (tmp_path / "o.png").write_bytes(buffer.getvalue())
    photo = read_photo(tmp_path / "o.png")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    assert np.array_equal(photo.pixels, expected)
    # written back upright, with the tag reset so viewers do not rotate twice
    write_photo(photo, tmp_path / "upright.png")
    again = read_photo(tmp_path / "upright.png")
    assert np.array_equal(again.pixels, expected)
    assert Image.open(tmp_path / "upright.png").getexif().get(0x0112, 1) == 1


def test_orientation_on_16_bit_pixels_matches_8_bit():
    pixels = _pixels(3, h=5, w=7)
    for orientation in range(1, 9):
        wide = apply_orientation(pixels.astype(np.uint16), orientation)
        assert np.array_equal(wide, apply_orientation(pixels, orientation))


def test_jpeg_round_trip_is_close_and_keeps_exif(tmp_path):
    pixels = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 48, axis=0).repeat(3, axis=2)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x010F] = "Renovate Test Camera"
    write_photo(Photo(pixels, exif=exif.tobytes()), tmp_path / "x.jpg")
    back = read_photo(tmp_path / "x.jpg")
    assert np.abs(back.pixels.astype(int) - pixels).max() <= 3
    assert Image.open(tmp_path / "x.jpg").getexif()[0x010F] == "Renovate Test Camera"


def test_corrupt_and_unsupported_files_give_clear_errors(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture")
    with pytest.raises(ImageReadError, match="notes.png.*not a photo"):
        read_photo(tmp_path / "notes.png")
    good = io.BytesIO()
    Image.fromarray(_pixels(3, h=64, w=64)).save(good, format="PNG")
    (tmp_path / "torn.png").write_bytes(good.getvalue()[:200])
    with pytest.raises(ImageReadError, match="torn.png"):
        read_photo(tmp_path / "torn.png")
    with pytest.raises(ImageReadError, match="does not exist"):
        read_photo(tmp_path / "missing.png")


def test_writes_refuse_clearly_and_leave_nothing(tmp_path):
    rgba = Photo(_pixels(4))
    with pytest.raises(ImageWriteError, match="transparency"):
        write_photo(rgba, tmp_path / "out.jpg")
    with pytest.raises(ImageWriteError, match="unsupported extension"):
        write_photo(rgba, tmp_path / "out.xyz")
    assert list(tmp_path.iterdir()) == []


def test_missing_folders_are_created_and_old_files_replaced_whole(tmp_path):
    target = tmp_path / "a" / "b" / "out.png"
    write_photo(Photo(_pixels(3)), target)
    second = _pixels(3)
    write_photo(Photo(second), target)
    assert np.array_equal(read_photo(target).pixels, second)
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]


def test_unwritable_folder_is_refused_clearly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageWriteError, match="cannot"):
        write_photo(Photo(_pixels(3)), blocker / "sub" / "out.png")


def test_palette_and_gray_photos_decode_to_plain_arrays(tmp_path):
    pal = Image.fromarray(_pixels(3)).convert("P")
    pal.save(tmp_path / "p.png")
    assert read_photo(tmp_path / "p.png").pixels.shape[2] == 3
    Image.fromarray(_pixels(1)).save(tmp_path / "g.jpg")
    photo = read_photo(tmp_path / "g.jpg")
    assert photo.pixels.ndim == 2 and photo.mode == "gray 8-bit"
