"""The one image reader every command uses: any common file in, an upright 8-bit RGB `PIL.Image` out.

It applies EXIF orientation, converts grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit or float
images to RGB, refuses images whose header declares more pixels than `max_pixels` before decoding them, can shrink
large ones while decoding (`max_side`), and turns every failure (missing file, not an image, truncated data) into
an `ImageError` naming the file.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facellm.errors import ImageError

# Pillow's own decompression-bomb threshold (about 89.5 megapixels): far above any face photo.
DEFAULT_MAX_PIXELS = 89_478_485

ImageSource = str | Path | bytes | Image.Image


def read_image(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None, name: str | None = None
) -> Image.Image:
    """Read a path, raw bytes or an opened image as upright RGB; raise `ImageError` with a one-line reason.

    `name`: what errors call the image (default: its path, or "image bytes").
    With `max_side`, a larger image is shrunk so its longer side is `max_side`; JPEGs are then decoded at a reduced
    scale (libjpeg's draft mode), so the full-size pixels are never held in memory."""
    if isinstance(source, Image.Image):
        return _shrink(_to_rgb(ImageOps.exif_transpose(source)), max_side)
    name = name or ("image bytes" if isinstance(source, bytes) else str(source))
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"image not found: {name}", "check the path")
        if path.is_dir():
            raise ImageError(f"expected an image file but got a folder: {name}", "pass the image files inside it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"image too large: {name} is {width}x{height} pixels, above the limit of {max_pixels:,}",
                    "downscale it first",
                )
            if max_side and max(width, height) > max_side:
                scale = max_side / max(width, height)
                image.draft(None, (max(1, int(width * scale)), max(1, int(height * scale))))
            image.load()
            if image.mode not in ("1", "P"):  # shrink first, so the turn and the colour conversion touch few pixels
                image = _shrink(image, max_side)
            return _shrink(_to_rgb(ImageOps.exif_transpose(image)), max_side)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not an image file: {name}", "pass a JPEG, PNG, WebP, BMP or TIFF image") from None
    except Image.DecompressionBombError:  # Pillow refuses extreme sizes inside open(), before our own check
        raise ImageError(
            f"image too large: {name} declares over {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels", "downscale it first"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"cannot decode image {name}: {exc}", "the file is truncated or corrupt; re-export it"
        ) from None


def _shrink(image: Image.Image, max_side: int | None) -> Image.Image:
    """The image with its longer side at most `max_side` (aspect ratio kept); unchanged when already small enough."""
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparent pixels become white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer or float grayscale to 8 bits instead of clipping it to white."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
    else:
        # 16-bit modes store 0..65535. Mode 'I' (32-bit) holds either 8- or 16-bit data depending on the file.
        sixteen_bit = image.mode.startswith("I;16") or values.max() > 255
        scaled = values / 257.0 if sixteen_bit else values
    gray = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    return gray.convert("RGB")
