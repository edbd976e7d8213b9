"""How a class-conditional model shows its networks the label: a one-hot code after a noise or
latent vector, or one-hot planes after an image's channels (the keras-io conditional GAN's
way). With no classes, inputs pass through untouched, so unconditional models compute exactly
what they did before labels existed."""

from __future__ import annotations

from keras import ops


def with_label_code(codes, labels, classes: int):
    """(batch, d) codes -> (batch, d + classes): the label's one-hot code appended."""
    if not classes:
        return codes
    return ops.concatenate([codes, ops.one_hot(labels, classes, dtype=codes.dtype)], axis=-1)


def with_label_planes(images, labels, classes: int):
    """(batch, H, W, C) images -> (batch, H, W, C + classes): one constant plane per class,
    1 for the image's label and 0 for the others."""
    if not classes:
        return images
    shape = ops.shape(images)
    planes = ops.one_hot(labels, classes, dtype=images.dtype)[:, None, None, :]
    planes = ops.broadcast_to(planes, (shape[0], shape[1], shape[2], classes))
    return ops.concatenate([images, planes], axis=-1)
