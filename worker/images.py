"""Reading uploaded images safely, and writing outputs without metadata. Torch-free."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from worker.errors import BadRequest

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_INPUT_PIXELS = 4096 * 4096  # far below Pillow's own bomb limit


def read_image(data: bytes, *, max_pixels: int = MAX_INPUT_PIXELS, mode: str | None = "RGB") -> Image.Image:
    """Decode an upload: explicit formats, size checked before pixels are decoded (mode None: as stored)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadRequest(f"the image is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB", param="image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size  # read from the header; nothing decoded yet
            if width * height > max_pixels:
                raise BadRequest(f"the image is {width}x{height}; at most {max_pixels} pixels", param="image")
            image.seek(0)  # an animation's first frame
            image.load()
    except BadRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadRequest(f"the image is too large: at most {max_pixels} pixels", param="image") from exc
    except UnidentifiedImageError as exc:
        raise BadRequest("couldn't read that image (PNG, JPEG, WebP or GIF)", param="image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadRequest("couldn't read that image: the file is damaged or truncated", param="image") from exc
    upright = ImageOps.exif_transpose(image)
    return upright.convert(mode) if mode else upright


def read_with_alpha(data: bytes, *, max_pixels: int = MAX_INPUT_PIXELS) -> tuple[Image.Image, Image.Image | None]:
    """An upload as RGB, plus its alpha channel ("L") when it has one; None when it is opaque by format."""
    image = read_image(data, max_pixels=max_pixels, mode=None)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    alpha = image.convert("RGBA").getchannel("A") if has_alpha else None
    return image.convert("RGB"), alpha


def encode_image(image: Image.Image, fmt: str = "png", quality: int = 90) -> bytes:
    """Re-encode from pixels only, so that no metadata (EXIF, GPS, text chunks) rides along."""
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    buffer = io.BytesIO()
    if fmt == "jpeg":
        clean.convert("RGB").save(buffer, format="JPEG", quality=quality)
    elif fmt == "webp":
        clean.save(buffer, format="WEBP", quality=quality)
    else:
        clean.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
