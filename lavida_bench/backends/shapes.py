"""The synthetic "shapes" world: solid coloured circles, squares and triangles drawn with PIL.

Fixtures and the synthetic world (`lavida_bench.world`) draw these images with known truth (kinds,
colours, boxes, counts, positions), so the stand-in evaluator backends (`standins.py`, through the
world's strict detector) can score them meaningfully without any weights.
Boxes are xyxy pixels with an exclusive right/bottom edge: a shape with box (10, 20, 30, 40)
covers columns 10..29 and rows 20..39, which is exactly the box the stand-in detector returns.
"""
from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

# GenEval's ten colour names, in the official order (djghosh13/geneval evaluate_images.py `COLORS`).
# The RGB values are this project's fixture choice: far apart from each other and from the
# #999 grey that GenEval pastes behind masked crops (evaluate_images.py `ImageCrops`).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 30),
    "green": (40, 160, 60),
    "blue": (30, 80, 220),
    "purple": (130, 50, 170),
    "pink": (250, 150, 200),
    "brown": (130, 80, 40),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Shape:
    """One solid shape: `kind` in SHAPES, `color` a COLORS name, `box` xyxy (exclusive end)."""

    kind: str
    color: str
    box: Box

    def __post_init__(self) -> None:
        if self.kind not in SHAPES:
            raise ValueError(f"Shape.kind {self.kind!r} is not one of {', '.join(SHAPES)}")
        if self.color not in COLORS:
            raise ValueError(f"Shape.color {self.color!r} is not one of {', '.join(COLORS)}")
        x0, y0, x1, y1 = self.box
        if not (x1 - x0 >= 2 and y1 - y0 >= 2):
            raise ValueError(f"Shape.box {self.box} must be xyxy with width and height >= 2")


def draw_shapes(size: tuple[int, int], shapes: list[Shape],
                background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Render `shapes` (later ones on top) as solid, un-antialiased fills on a `size`=(W, H) canvas.

    Solid fills matter: the strict detector segments by palette colour and checks each region
    against the ideal shape, so a shape must not blend into its neighbours. A white shape on the
    default white background is invisible; pick another background for white objects.
    """
    width, height = size
    image = Image.new("RGB", (width, height), tuple(background))
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        x0, y0, x1, y1 = (round(v) for v in shape.box)
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(f"Shape.box {shape.box} lies outside the {width}x{height} canvas")
        fill = COLORS[shape.color]
        # PIL's rectangle/ellipse/polygon include their last coordinate, hence the -1.
        if shape.kind == "square":
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
        elif shape.kind == "circle":
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
        else:  # triangle: apex at the top centre, base along the bottom edge
            draw.polygon([(x0, y1 - 1), (x1 - 1, y1 - 1), ((x0 + x1 - 1) / 2, y0)], fill=fill)
    return image
