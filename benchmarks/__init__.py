"""Benchmarks and their shared helpers: measurement code that does not ship in the package.

TensorFlow is imported here, quietly (as the CLIs do), before any benchmark module imports
Keras: TensorFlow reads its C++ log level once, at its first log line."""

from gan_vae_tf import console

console.import_tensorflow_quietly()
