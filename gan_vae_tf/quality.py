"""Sample quality on one scale for every run: generated images against held-out real ones.

Each metric is also computed between two disjoint real sets of the same size (the "real-data
floor"), so a model's number can be read against what perfect samples would score.
MNIST-like data use the project's own digit classifier as feature space (FID, KID,
precision/recall, classifier score); colour images use the sliced Wasserstein distance on
Laplacian-pyramid patches, which needs no pretrained network.
"""
from __future__ import annotations

import numpy as np

from gan_vae_tf import metrics

CLASSIFIER_DATASETS = ("mnist", "fashion_mnist")


def _feature_metrics(real: np.ndarray, other: np.ndarray, k: int = 3) -> dict:
    kid, kid_std = metrics.kernel_inception_distance(real, other)
    precision, recall = metrics.precision_recall(real, other, k=k)
    return {"fid": metrics.frechet_distance(real, other), "kid": kid, "kid_std": kid_std,
            "precision": precision, "recall": recall}


def classifier_quality(classifier, real: np.ndarray, reference: np.ndarray, fake: np.ndarray) -> dict:
    """Metrics of `fake` and of the disjoint real `reference` set, both against `real`."""
    from gan_vae_tf import classifier as clf

    (real_f, real_p), (ref_f, ref_p), (fake_f, fake_p) = (
        clf.features(classifier, x) for x in (real, reference, fake))
    model = _feature_metrics(real_f, fake_f)
    floor = _feature_metrics(real_f, ref_f)
    model["classifier_score"] = metrics.classifier_score(fake_p)
    floor["classifier_score"] = metrics.classifier_score(ref_p)
    model["class_histogram"] = metrics.class_histogram(fake_p).tolist()
    floor["class_histogram"] = metrics.class_histogram(ref_p).tolist()
    return {"feature_space": "digit classifier (penultimate layer, 128-d)",
            "model": model, "real_floor": floor, "n": int(len(fake))}


def patch_quality(real: np.ndarray, reference: np.ndarray, fake: np.ndarray) -> dict:
    return {"feature_space": "Laplacian-pyramid 7x7 patches (SWD x 1e3)",
            "model": {"swd": float(np.mean(metrics.sliced_wasserstein_distance(real, fake)))},
            "real_floor": {"swd": float(np.mean(metrics.sliced_wasserstein_distance(real, reference)))},
            "n": int(len(fake))}


def inception_quality(weights_path: str, real: np.ndarray, reference: np.ndarray, fake: np.ndarray,
                      batch_size: int = 50) -> dict:
    """FID/KID/precision-recall in InceptionV3 pool features, from a user-supplied weights file
    (never downloaded: offline machines would hang or fail)."""
    import keras
    import tensorflow as tf

    net = keras.applications.InceptionV3(include_top=False, weights=weights_path, pooling="avg",
                                         input_shape=(299, 299, 3))

    def feats(images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            x = tf.image.resize(tf.cast(images[i:i + batch_size], tf.float32), (299, 299))
            if x.shape[-1] == 1:
                x = tf.image.grayscale_to_rgb(x)
            out.append(net(keras.applications.inception_v3.preprocess_input(x), training=False).numpy())
        return np.concatenate(out).astype(np.float64)

    real_f, ref_f, fake_f = feats(real), feats(reference), feats(fake)
    return {"feature_space": "InceptionV3 pool (2048-d)",
            "model": _feature_metrics(real_f, fake_f), "real_floor": _feature_metrics(real_f, ref_f)}
