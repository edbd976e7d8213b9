"""How a class-conditional model shows its networks the label.

Networks that start from a code (generator, decoder) take the label's one-hot code after the
noise or latent vector. Networks that read images (discriminator, encoder) take it one of two
ways (`config.LABEL_INPUTS`): as one-hot planes after the image's channels (the keras-io conditional
GAN's way: every convolution sees the class), or beside the image as a one-hot code that the
network joins to its features after the convolutions (a projection discriminator, an encoder
whose last layer reads the class), which leaves the convolutions as cheap as an unconditional
model's. With no classes, inputs pass through untouched, so unconditional models compute
exactly what they did before labels existed."""

from __future__ import annotations

from keras import ops

from gan_vae_tf.config import PLANES


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


def image_net_input(images, labels, classes: int, label_input: str):
    """What a network that reads images is called with: the images alone (unconditional),
    images with label planes (`PLANES`), or [images, one-hot labels] (any other way)."""
    if not classes:
        return images
    if label_input == PLANES:
        return with_label_planes(images, labels, classes)
    images = ops.convert_to_tensor(images)  # a network's inputs: all tensors or all arrays
    return [images, ops.one_hot(labels, classes, dtype=images.dtype)]
