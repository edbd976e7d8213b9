"""Train, evaluate and compare a DCGAN and a convolutional VAE (TensorFlow / Keras 3).

`gan_vae_tf.load(RUN_DIR)` opens a trained run for sampling (see `trained.TrainedModel`);
importing the package itself loads nothing heavy, so the command-line tools can set up the
console before TensorFlow starts.
"""

__version__ = "0.1.0"


def load(run_dir):
    """The finished run in `run_dir` as a `trained.TrainedModel`: `.sample(n, seed=...)`,
    `.config`, and for a VAE `.encode(images)` and `.decode(z)`."""
    from gan_vae_tf import trained  # imports TensorFlow: only when asked for

    return trained.load(run_dir)
