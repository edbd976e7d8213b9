"""Layered architecture diagrams of the four networks, drawn by visualkeras.

visualkeras 0.2 was written for Keras 2 and reads `layer.output_shape`, which Keras 3 layers
no longer have. Rather than patch site-packages or leave extra state on the user's model, the
shapes are lent to the layers only while visualkeras draws, then taken back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import visualkeras
from keras import layers
from PIL import Image, ImageChops, ImageDraw, ImageFont

from gan_vae_tf.rundir import atomic_path

# One colour per layer type in every diagram, so a BatchNormalization in the generator looks
# like one in the discriminator (visualkeras' colour wheel assigns colours by first appearance).
_COLOURS: dict[type, str] = {
    layers.InputLayer: "#cccccc",
    layers.Dense: "#ef476f",
    layers.Reshape: "#ffd166",
    layers.Flatten: "#ffd166",
    layers.Conv2D: "#118ab2",
    layers.Conv2DTranspose: "#06d6a0",
    layers.BatchNormalization: "#842da1",
    layers.LeakyReLU: "#fe9775",
    layers.ReLU: "#fe9775",
    layers.Activation: "#ffbad4",
    layers.Dropout: "#83d483",
}
_RESHAPING = (layers.Dense, layers.Conv2D, layers.Conv2DTranspose, layers.Reshape, layers.Flatten)


def _as_shape(shape: Any) -> Any:
    """Keras 3 shapes as plain tuples (lists of tuples for several outputs), as Keras 2 gave."""
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [tuple(s) for s in shape]
    return tuple(shape) if shape is not None else None


def _tensor_shape(tensors: Any) -> Any:
    if not isinstance(tensors, (list, tuple)):
        return tuple(tensors.shape)
    if len(tensors) == 1:
        return tuple(tensors[0].shape)
    return [tuple(t.shape) for t in tensors]


def _built_input_shape(layer: keras.layers.Layer) -> Any:
    built = getattr(layer, "_build_shapes_dict", None)
    if isinstance(built, dict) and len(built) == 1:
        return _as_shape(next(iter(built.values())))
    return None


def _layer_shapes(model: keras.Model) -> list[tuple[Any, Any]]:
    """(input shape, output shape) per layer of `model.layers`.

    Layers that were never called symbolically (a subclassed model, a Sequential without an
    Input) fall back to `compute_output_shape` of the previous layer's output or of the shape
    they were built for, and to None (drawn at minimum size) when nothing is known.
    """
    shapes: list[tuple[Any, Any]] = []
    previous: Any = None
    if getattr(model, "inputs", None):
        previous = _tensor_shape(model.inputs)
    for layer in model.layers:
        try:
            shape_in, shape_out = _tensor_shape(layer.input), _tensor_shape(layer.output)
        except (AttributeError, ValueError, RuntimeError):
            shape_in, shape_out = previous or _built_input_shape(layer), None
            previous = shape_in
            if previous is not None:
                try:
                    shape_out = _as_shape(layer.compute_output_shape(previous))
                except Exception:  # noqa: BLE001 - a layer that cannot say draws at minimum size
                    shape_out = None
        shapes.append((shape_in, shape_out))
        previous = shape_out
    return shapes


@contextmanager
def keras2_shapes(model: keras.Model) -> Iterator[keras.Model]:
    """Give each layer Keras 2's `output_shape` / `input_shape` attributes for the duration.

    Set with `object.__setattr__` so Keras' attribute tracking never sees them, and only where a
    layer lacks the attribute, so a layer (or subclass) that defines its own keeps it.
    """
    lent: list[tuple[keras.layers.Layer, str]] = []
    try:
        for layer, (shape_in, shape_out) in zip(model.layers, _layer_shapes(model), strict=True):
            for name, shape in (("output_shape", shape_out), ("input_shape", shape_in)):
                if not hasattr(layer, name):
                    object.__setattr__(layer, name, shape)
                    lent.append((layer, name))
        yield model
    finally:
        for layer, name in reversed(lent):
            if name in vars(layer):
                object.__delattr__(layer, name)


def load_font(size: int = 14) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans when installed; otherwise Pillow's bundled font, which needs no files."""
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _shape_text(shape: Any) -> str:
    """ "28x28x1" for one tensor's shape, "28x28x1 + 10" for several (an image and a label)."""
    if isinstance(shape, list):
        return " + ".join(_shape_text(s) for s in shape)
    if not shape:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape[1:])


def _shape_captions() -> Callable[[int, Any], tuple[str, bool]]:
    """Output shapes under the layers that change them, alternating below/above the boxes so
    neighbouring captions do not overlap."""
    counter = {"n": 0}

    def caption(index: int, layer: Any) -> tuple[str, bool]:
        if not isinstance(layer, _RESHAPING):
            return "", False
        counter["n"] += 1
        return _shape_text(getattr(layer, "output_shape", None)), counter["n"] % 2 == 0

    return caption


def _caption_overhang(model: keras.Model, font: Any) -> int:
    """Half the widest caption: visualkeras centres captions on the boxes, so one on the first
    or last box reaches this far past it and is cut off unless the padding leaves room."""
    widths = [
        font.getlength(_shape_text(getattr(layer, "output_shape", None)))
        for layer in model.layers
        if isinstance(layer, _RESHAPING)
    ]
    return int(max(widths, default=0) / 2) + 4


def _trimmed(image: Image.Image, margin: int) -> Image.Image:
    """Crop to the drawing plus `margin`: visualkeras leaves uneven blank bands, wider still
    after the caption padding."""
    box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    if box is None:
        return image
    left, top, right, bottom = box
    out = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), "white")
    out.paste(image.crop(box), (margin, margin))
    return out


def _titled(image: Image.Image, title: str, font: Any, padding: int) -> Image.Image:
    left, top, right, bottom = ImageDraw.Draw(image).textbbox((0, 0), title, font=font)
    strip = bottom + padding
    out = Image.new("RGB", (max(image.width, right + 2 * padding), image.height + strip), "white")
    ImageDraw.Draw(out).text((padding, padding), title, fill="black", font=font)
    out.paste(image, (0, strip))
    return out


def _render(
    model: keras.Model,
    legend: bool,
    shapes: bool,
    font: Any,
    sizes: dict[str, float],
    spacing: int,
    padding: int,
    one_dim_orientation: str,
) -> Image.Image:
    return visualkeras.layered_view(
        model,
        legend=legend,
        font=font,
        color_map={k: {"fill": v} for k, v in _COLOURS.items()},
        text_callable=_shape_captions() if shapes else None,
        spacing=spacing,
        padding=padding,
        one_dim_orientation=one_dim_orientation,
        legend_text_spacing_offset=0,
        min_z=int(sizes["min_z"]),
        min_xy=int(sizes["min_xy"]),
        max_z=int(sizes["max_z"]),
        max_xy=int(sizes["max_xy"]),
        scale_z=sizes["scale_z"],
        scale_xy=sizes["scale_xy"],
    ).convert("RGB")


def layered_diagram(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    legend: bool = True,
    shapes: bool = True,
    title: str | None = None,
    scale_xy: float = 3.0,
    scale_z: float = 0.5,
    max_xy: int = 240,
    max_z: int = 160,
    min_xy: int = 12,
    min_z: int = 10,
    spacing: int = 14,
    padding: int = 16,
    one_dim_orientation: str = "y",
    max_width: int = 2000,
    font_size: int = 14,
) -> Path:
    """Draw `model` as visualkeras boxes and write a PNG atomically; returns the path.

    Box sizes shrink until the diagram fits `max_width` pixels: a 64x64 DCGAN has layers of
    8192 units and 512 channels, which at fixed scales would be metres wide. The legend names
    each layer type; `shapes` captions layers that change the tensor shape.
    """
    font = load_font(font_size)
    sizes = dict(
        scale_xy=scale_xy, scale_z=scale_z, max_xy=max_xy, max_z=max_z, min_xy=min_xy, min_z=min_z
    )
    margin = padding
    model = as_keras_layers(model)
    with keras2_shapes(model):
        if shapes:
            padding = max(padding, _caption_overhang(model, font))
        image = _render(model, legend, shapes, font, sizes, spacing, padding, one_dim_orientation)
        for _ in range(8):
            if image.width <= max_width:
                break
            shrink = max(0.5, 0.97 * (max_width - 2 * padding) / (image.width - 2 * padding))
            for key in ("scale_xy", "scale_z", "max_xy", "max_z"):
                sizes[key] *= shrink
            for key, floor in (("min_xy", 4), ("min_z", 3)):
                sizes[key] = max(floor, sizes[key] * shrink)
            spacing = max(4, int(spacing * shrink))
            image = _render(
                model, legend, shapes, font, sizes, spacing, padding, one_dim_orientation
            )
    if image.width > max_width:
        image = image.resize(
            (max_width, max(1, round(image.height * max_width / image.width))), Image.LANCZOS
        )
    image = _trimmed(image, margin)
    if title:
        image = _titled(image, title, font, margin)
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def keras_class(layer: keras.layers.Layer) -> type:
    """The Keras layer class whose function `layer` computes: its own class, or for one of
    the package's faster kernels (`layers.PixelUnshuffleConv2D`, ...) the Keras class it
    subclasses. Diagrams name what a reader knows, not the kernel that computes it."""
    return next(c for c in type(layer).__mro__ if c.__module__.startswith("keras."))


def as_keras_layers(model: keras.Model) -> keras.Model:
    """`model` drawn with Keras' own layer classes: a Sequential whose layers include one of
    the package's subclasses is rebuilt, untrained, from the same layer configs (a diagram
    needs shapes, not weights); any other model is returned as it is."""
    if not isinstance(model, keras.Sequential) or all(
        type(layer) is keras_class(layer) for layer in model.layers
    ):
        return model
    twins = [keras_class(layer).from_config(layer.get_config()) for layer in model.layers]
    return keras.Sequential([keras.Input(model.inputs[0].shape[1:]), *twins], name=model.name)


def network_diagrams(
    networks: dict[str, keras.Model], out_dir: str | os.PathLike, prefix: str = "", **options: Any
) -> dict[str, Path]:
    """Write `<out_dir>/<name>.png` for each network, titled with `prefix`, its name, shapes
    and parameter count; `options` go to `layered_diagram`."""
    out: dict[str, Path] = {}
    for name, net in networks.items():
        shape_in, shape_out = (_shape_text(_tensor_shape(t)) for t in (net.inputs, net.outputs))
        title = f"{prefix}{name}: {shape_in} -> {shape_out}, {net.count_params():,} parameters"
        out[name] = layered_diagram(
            net, Path(out_dir) / f"{name}.png", **{"title": title, **options}
        )
    return out
