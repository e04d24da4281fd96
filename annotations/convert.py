"""Box conversions between Label Studio percent, YOLO normalised and pixel boxes (pure, round-trip).

Pixel ``xyxy`` with a top-left origin is the project's canonical box. Label Studio stores a region as
percentages of the image (``x, y, width, height`` of the top-left corner and size) with the image's
``original_width/height`` beside it; YOLO stores normalised centre and size.
"""

from __future__ import annotations

from plastic_hotspots.records import BBox


def ls_to_pixels(x: float, y: float, width: float, height: float, image_w: float, image_h: float) -> BBox:
    """A Label Studio rectangle (percent of the image, top-left corner and size) as pixel xyxy."""
    return BBox(
        x * image_w / 100, y * image_h / 100, (x + width) * image_w / 100, (y + height) * image_h / 100
    )


def pixels_to_ls(box: BBox, image_w: float, image_h: float) -> tuple[float, float, float, float]:
    """Pixel xyxy as a Label Studio rectangle: ``(x, y, width, height)`` in percent of the image."""
    return (
        100 * box.x1 / image_w,
        100 * box.y1 / image_h,
        100 * box.width / image_w,
        100 * box.height / image_h,
    )


def yolo_to_pixels(cx: float, cy: float, w: float, h: float, image_w: float, image_h: float) -> BBox:
    """A YOLO box (normalised centre and size) as pixel xyxy."""
    return BBox(
        (cx - w / 2) * image_w, (cy - h / 2) * image_h, (cx + w / 2) * image_w, (cy + h / 2) * image_h
    )


def pixels_to_yolo(box: BBox, image_w: float, image_h: float) -> tuple[float, float, float, float]:
    """Pixel xyxy as a YOLO box: normalised ``(cx, cy, w, h)``."""
    return (
        (box.x1 + box.x2) / 2 / image_w,
        (box.y1 + box.y2) / 2 / image_h,
        box.width / image_w,
        box.height / image_h,
    )


def ls_region(
    box: BBox, label: str, image_w: int, image_h: int, region_id: str, score: float | None = None
) -> dict[str, object]:
    """A Label Studio ``rectanglelabels`` region of the project's interface for a pixel box."""
    x, y, w, h = pixels_to_ls(box, image_w, image_h)
    region: dict[str, object] = {
        "id": region_id,
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": image_w,
        "original_height": image_h,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]},
    }
    if score is not None:
        region["score"] = score
    return region
