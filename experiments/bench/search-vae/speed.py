"""Steps per second of vae-mnist variants on synthetic binary batches (same compiled train step
as train.py: models.build, steps_per_execution from the config). usage:
python -m ... speed.py "label|k=v,k=v" ...   each k=v is a --set override."""
import sys, time, json, os
sys.path.insert(0, "/work/vae-search")
import numpy as np
import tensorflow as tf
from gan_vae_tf import config as C, models

def bench(overrides, steps=400):
    cfg = C.override(C.preset("vae-mnist"), ["train.steps_per_execution=10", *overrides])
    b = cfg.train.batch_size
    model = models.build(cfg, "float32", 1000)
    x = (np.random.default_rng(0).random((b * 20, 28, 28, 1)) > 0.8).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(b, drop_remainder=True).repeat().prefetch(4)
    model.fit(ds, steps_per_epoch=100, epochs=1, verbose=0)  # compile + warm
    l0 = open("/proc/loadavg").read().split()[0]
    t = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    dt = time.perf_counter() - t
    l1 = open("/proc/loadavg").read().split()[0]
    return steps / dt, l0, l1

for arg in sys.argv[1:]:
    label, _, rest = arg.partition("|")
    ov = [s for s in rest.split(";") if s]
    sps, l0, l1 = bench(ov)
    b = C.override(C.preset("vae-mnist"), ov).train.batch_size
    print(json.dumps({"arm": label, "overrides": ov, "steps_per_s": round(sps, 2),
                      "images_per_s": round(sps * b), "load": [l0, l1]}), flush=True)
