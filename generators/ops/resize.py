"""Spatial resizing of NCHW images to an explicit output size: torch F.interpolate modes
'nearest', 'nearest-exact' and 'bilinear' (align_corners False or True, no antialias).

The tf lowerings transpose to NHWC and call the resize kernel with torch's sampling grid.
No framework import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from generators.dtypes import FLOATS, INTS, DType
from generators.spec import Attrs, Choice, IntsAttr, Operand, OpSpec, RankCtx
from generators.symbolic import Shape, SymBool

MAX_RESIZE = 12


def _two(ctx: RankCtx) -> int:
    return 2


def _resize_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [len(shapes[0]) == 4]


def _resize_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    x = shapes[0]
    return ((x[0], x[1], attrs["size"][0], attrs["size"][1]),)


def resize_nearest_index(np: Any, in_size: int, out_size: int, exact: bool) -> Any:
    """Source index of each output index, computed in float32 exactly as torch and tf do
    (scale = float(in) / out; floor(dst * scale), or floor((dst + 0.5) * scale) for the
    half-pixel 'exact' mode), clamped to the input."""
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32)
    if exact:
        dst = dst + np.float32(0.5)
    return np.minimum(np.floor(dst * scale).astype(np.int64), in_size - 1)


def resize_nearest(np: Any, x: Any, size: Any, exact: bool) -> Any:
    rows = resize_nearest_index(np, x.shape[2], size[0], exact)
    cols = resize_nearest_index(np, x.shape[3], size[1], exact)
    return x[:, :, rows, :][:, :, :, cols]


def reference_resize_nearest(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return resize_nearest(np, inputs[0], attrs["size"], False)


def reference_resize_nearest_exact(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return resize_nearest(np, inputs[0], attrs["size"], True)


def resize_linear_taps(np: Any, in_size: int, out_size: int, align_corners: bool) -> Any:
    """(lower index, upper index, weight of the upper) per output index, as torch computes
    them: align_corners maps the corner pixels' centres onto each other; otherwise
    half-pixel centres, with negative source coordinates clamped to 0."""
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        src = dst * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    else:
        src = np.maximum((dst + 0.5) * (in_size / out_size) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, src - lo


def reference_resize_bilinear(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    wide = x.astype(np.float64)
    top, bottom, fy = resize_linear_taps(np, x.shape[2], attrs["size"][0], attrs["align_corners"])
    left, right, fx = resize_linear_taps(np, x.shape[3], attrs["size"][1], attrs["align_corners"])
    fy = fy[:, None]
    rows = wide[:, :, top, :] * (1.0 - fy) + wide[:, :, bottom, :] * fy
    return (rows[:, :, :, left] * (1.0 - fx) + rows[:, :, :, right] * fx).astype(x.dtype)


def torch_resize_nearest(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.nn.functional.interpolate(inputs[0], size=tuple(attrs["size"]), mode="nearest")


def torch_resize_nearest_exact(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.nn.functional.interpolate(inputs[0], size=tuple(attrs["size"]), mode="nearest-exact")


def torch_resize_bilinear(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.nn.functional.interpolate(
        inputs[0], size=tuple(attrs["size"]), mode="bilinear", align_corners=attrs["align_corners"]
    )


def tf_resize_nearest(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = tf.transpose(inputs[0], [0, 2, 3, 1])
    # The legacy grid (no half-pixel centres) is torch's 'nearest'.
    y = tf.raw_ops.ResizeNearestNeighbor(images=x, size=list(attrs["size"]), align_corners=False,
                                         half_pixel_centers=False)
    return tf.transpose(y, [0, 3, 1, 2])


def tf_resize_nearest_exact(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = tf.transpose(inputs[0], [0, 2, 3, 1])
    # TF2's nearest resize uses half-pixel centres: torch's 'nearest-exact'.
    y = tf.image.resize(x, list(attrs["size"]), method="nearest")
    return tf.transpose(y, [0, 3, 1, 2])


def tf_resize_bilinear(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = tf.transpose(inputs[0], [0, 2, 3, 1])
    corners = attrs["align_corners"]
    y = tf.raw_ops.ResizeBilinear(images=x, size=list(attrs["size"]), align_corners=corners,
                                  half_pixel_centers=not corners)
    # ResizeBilinear always computes and returns float32.
    return tf.cast(tf.transpose(y, [0, 3, 1, 2]), inputs[0].dtype)


def onnx_resize_spatial(g: Any, x: Any, size: Any, **attrs: Any) -> Any:
    """ONNX Resize of the two spatial dims of NCHW `x` to `size`."""
    sizes = g.ints([int(d) for d in g.shape(x)[:2]] + [int(d) for d in size])
    return g.Resize(x, None, None, sizes, **attrs)


def onnx_resize_nearest(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # src = floor(dst / (out / in)): torch's floor(dst * in / out). onnxruntime divides by a
    # float32 out/in, which lands just below an exact integer from an input dim of 14 on.
    return onnx_resize_spatial(g, inputs[0], attrs["size"], mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def onnx_resize_nearest_exact(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # half_pixel gives (dst + 0.5) * in / out - 0.5; rounding halves up adds the 0.5 back
    # before the floor.
    return onnx_resize_spatial(g, inputs[0], attrs["size"], mode="nearest",
                       coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil")


def onnx_resize_bilinear(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # Not pytorch_half_pixel: that maps a size-1 output to source 0, torch to the centre.
    # ONNX clamps negative source coordinates to 0, as torch does.
    mode = "align_corners" if attrs["align_corners"] else "half_pixel"
    return onnx_resize_spatial(g, inputs[0], attrs["size"], mode="linear", coordinate_transformation_mode=mode)


_NEAREST_DTYPES = FLOATS | {DType.uint8}
_NEAREST_EXCLUDED = {
    d: "torch CPU nearest upsampling has no kernel for this integer dtype (only uint8)"
    for d in INTS - {DType.uint8}
}

RESIZE_NEAREST = OpSpec(
    name="resize_nearest",
    operands=(Operand("x", ranks=(4,)),),
    dtypes=_NEAREST_DTYPES,
    attrs={"size": IntsAttr(_two, 1, MAX_RESIZE)},
    requires=_resize_requires,
    infer=_resize_infer,
    reference=reference_resize_nearest,
    torch=torch_resize_nearest,
    tf=tf_resize_nearest,
    onnx=onnx_resize_nearest,
    excluded_dtypes=_NEAREST_EXCLUDED,
    doc="torch F.interpolate(size=size, mode='nearest'): src = floor(dst * in / out) in float32.",
)

RESIZE_NEAREST_EXACT = OpSpec(
    name="resize_nearest_exact",
    operands=(Operand("x", ranks=(4,)),),
    dtypes=_NEAREST_DTYPES,
    attrs={"size": IntsAttr(_two, 1, MAX_RESIZE)},
    requires=_resize_requires,
    infer=_resize_infer,
    reference=reference_resize_nearest_exact,
    torch=torch_resize_nearest_exact,
    tf=tf_resize_nearest_exact,
    onnx=onnx_resize_nearest_exact,
    excluded_dtypes=_NEAREST_EXCLUDED,
    doc="torch F.interpolate(size=size, mode='nearest-exact'): src = floor((dst + 0.5) * in / out).",
)

RESIZE_BILINEAR = OpSpec(
    name="resize_bilinear",
    operands=(Operand("x", ranks=(4,)),),
    dtypes=FLOATS - {DType.float64},
    attrs={"size": IntsAttr(_two, 1, MAX_RESIZE), "align_corners": Choice((False, True))},
    requires=_resize_requires,
    infer=_resize_infer,
    reference=reference_resize_bilinear,
    torch=torch_resize_bilinear,
    tf=tf_resize_bilinear,
    onnx=onnx_resize_bilinear,
    excluded_dtypes={
        DType.float64: "tf ResizeBilinear computes and returns float32, so float64 precision is lost",
        **{d: "tf ResizeBilinear returns float32 (no integer rounding to match torch)" for d in INTS},
    },
    doc="torch F.interpolate(size=size, mode='bilinear', align_corners=...), antialias off.",
)

OPS = (RESIZE_NEAREST, RESIZE_NEAREST_EXACT, RESIZE_BILINEAR)
