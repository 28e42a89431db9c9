"""The image reader on real sample faces and on every awkward format a user may hand it."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facellm.errors import ImageError
from facellm.images import read_image


@pytest.fixture
def face(faces):
    return Image.open(faces[0].path)


def test_reads_sample_face_as_rgb(faces):
    image = read_image(faces[0].path)
    assert image.mode == "RGB"
    assert image.size == (224, 224)


def test_applies_exif_orientation(tmp_path, face):
    # A wide image tagged "rotate 90 degrees clockwise" (orientation 6) must come back tall.
    wide = face.resize((200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    wide.save(path, exif=exif)
    assert Image.open(path).size == (200, 100)
    assert read_image(path).size == (100, 200)


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "LA", "YCbCr"])
def test_converts_modes_to_rgb(tmp_path, face, mode):
    suffix = "jpg" if mode in ("CMYK", "YCbCr") else "png"
    path = tmp_path / f"face.{suffix}"
    face.convert(mode).save(path)
    image = read_image(path)
    assert image.mode == "RGB" and image.size == face.size


def test_transparent_pixels_become_white(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    path = tmp_path / "alpha.png"
    rgba.save(path)
    image = read_image(path)
    assert image.getpixel((5, 5)) == (255, 255, 255)
    assert image.getpixel((0, 0)) == (0, 0, 255)


def test_palette_with_transparency(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    path = tmp_path / "palette.png"
    palette.save(path, transparency=0)
    assert read_image(path).getpixel((0, 0)) == (10, 200, 30)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    image = np.asarray(read_image(path))
    assert image.shape == (8, 8, 3)
    assert image[0, 0, 0] == 0
    assert image[-1, -1, 0] == round(63000 / 257)
    # Clipping (Pillow's plain convert) would make most of the ramp pure white.
    assert (image[..., 0] == 255).sum() == 0


def test_float_image_is_stretched(tmp_path):
    values = np.linspace(-1.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    path = tmp_path / "float.tiff"
    Image.fromarray(values, mode="F").save(path)
    image = np.asarray(read_image(path))
    assert image.min() == 0 and image.max() == 255


def test_accepts_bytes_and_open_images(faces):
    data = faces[1].path.read_bytes()
    assert read_image(data).size == (224, 224)
    assert read_image(Image.open(faces[1].path).convert("L")).mode == "RGB"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height; the pixel data is not needed to trip the size check."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [10_000, 40_000])  # above our limit; above Pillow's own hard limit too
def test_refuses_decompression_bomb(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    with pytest.raises(ImageError, match=r"image too large: .*bomb\.png .*; downscale it first"):
        read_image(path)


def test_max_pixels_is_configurable(faces):
    with pytest.raises(ImageError, match="too large"):
        read_image(faces[0].path, max_pixels=100 * 100)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"image not found: .*nope\.jpg; check the path"):
        read_image(tmp_path / "nope.jpg")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ImageError, match="got a folder"):
        read_image(tmp_path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels")
    with pytest.raises(ImageError, match=r"not an image file: .*notes\.jpg"):
        read_image(path)


def test_truncated_jpeg(tmp_path, faces):
    data = faces[0].path.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cannot decode image .*cut\.jpg.*truncated"):
        read_image(path)
    assert "\n" not in str(pytest.raises(ImageError, read_image, path).value)


def test_max_side_shrinks_while_keeping_orientation_and_aspect():
    """A 4000 x 1000 image stored with EXIF 'rotate 90' comes out upright (1000 wide, 4000 tall), then shrunk to
    2048 on its longer side, for JPEG (reduced-scale decoding) and PNG alike; small images are left alone."""
    import io

    original = Image.new("RGB", (4000, 1000), (10, 200, 10))
    exif = original.getexif()
    exif[0x0112] = 6
    for kind in ("JPEG", "PNG"):
        data = io.BytesIO()
        original.save(data, kind, exif=exif.tobytes())
        assert read_image(data.getvalue(), max_side=2048).size == (512, 2048)
    small = io.BytesIO()
    Image.new("RGB", (300, 200)).save(small, "PNG")
    assert read_image(small.getvalue(), max_side=2048).size == (300, 200)
