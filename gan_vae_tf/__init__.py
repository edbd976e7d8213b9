"""Train, evaluate and compare a DCGAN and a convolutional VAE on MNIST and anime faces."""

__version__ = "0.1.0"
