"""The fixed choices users pick from in commands: picture shapes, and the image types the bot reads."""

from __future__ import annotations

from egaku.i18n import _

ASPECTS = {"1:1": "square", "3:2": "landscape", "16:9": "wide", "2:3": "portrait", "9:16": "tall"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
NOT_AN_IMAGE = _("That isn't a picture I can read. Please attach a PNG, JPEG, WebP or GIF.")
