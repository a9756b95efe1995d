"""The wire types' bounds: the same checks run in the tool and in the worker."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from worker.protocol import EditRequest, GenerationRequest, Size, parse_size, size_for_aspect


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 100000),
        ("steps", 0),
        ("n", 50),
        ("n", 0),
        ("seed", -1),
        ("seed", 2**32),
        ("guidance", math.nan),
        ("guidance", -1.0),
        ("size", "8192x8192"),
        ("size", "1000x1001"),
        ("size", "huge"),
        ("aspect", "5:1"),
        ("prompt", "   "),
        ("prompt", "x" * 4001),
        ("references", ["aGk="] * 17),
        ("reference_role", "face"),
        ("reference_scale", 2.5),
        ("reference_scale", math.inf),
        ("unknown", 1),
    ],
)
def test_out_of_bounds_requests_are_refused(field: str, value: object) -> None:
    body = {"prompt": "a fox", field: value}
    with pytest.raises(ValidationError):
        GenerationRequest.model_validate(body)


def test_numbers_as_strings_are_coerced_only_when_valid() -> None:
    assert GenerationRequest.model_validate({"prompt": "a fox", "steps": "20"}).steps == 20
    with pytest.raises(ValidationError):
        GenerationRequest.model_validate({"prompt": "a fox", "steps": "twenty"})


def test_parse_size() -> None:
    assert parse_size("1024x768") == Size(width=1024, height=768)


@pytest.mark.parametrize(
    ("aspect", "expected"),
    [("1:1", (1024, 1024)), ("16:9", (1344, 768)), ("9:16", (768, 1344)), ("3:2", (1216, 832)), ("4:3", (1152, 896))],
)
def test_aspect_keeps_the_pixel_budget(aspect: str, expected: tuple[int, int]) -> None:
    size = size_for_aspect(aspect, Size(width=1024, height=1024))
    assert (size.width, size.height) == expected


def test_aspect_on_tiny_models_uses_multiples_of_8() -> None:
    assert size_for_aspect("16:9", Size(width=64, height=64)) == Size(width=80, height=48)


def test_references_ride_on_new_pictures_and_an_edits_are_its_further_image_files() -> None:
    request = GenerationRequest(prompt="the cat from picture 1", references=["aGk="] * 16, reference_role="style")
    assert (len(request.references), request.reference_role, request.reference_scale) == (16, "style", None)
    with pytest.raises(ValidationError, match="an edit's reference pictures are further image\\[\\] files"):
        EditRequest(prompt="x", references=["aGk="])
