"""Quality curve of one vae-mnist recipe: train as train.py does (models.build, data.pipeline
with EpochOrder, the same compiled step) and, after every epoch (a fixed step count), score
the test ELBO on 10,000 images and classifier score/FID/class histogram on N prior samples.
Scoring is charged to neither the wall nor the CPU seconds.
usage: python curve.py OUT.json N_PROBE k=v k=v ...   (k=v are --set overrides of vae-mnist)"""
import json, sys, time, resource
sys.path.insert(0, "/work/vae-search")
from dataclasses import replace
import numpy as np
import keras
from gan_vae_tf import config as C, data, models, evaluate, quality, classifier, plots

out, nprobe, sets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cfg = C.override(C.preset("vae-mnist"), sets)
cfg = replace(cfg, data=replace(cfg.data, data_dir="/work/shared/data"))
keras.utils.set_random_seed(cfg.train.seed)
ds = data.load(cfg.data)
order = data.EpochOrder(len(ds.train), cfg.train.batch_size, cfg.train.seed,
                        steps_per_epoch=cfg.train.steps_per_epoch)
model = models.build(cfg, "float32", order.steps)
clf, _ = classifier.train_or_load("mnist", ds.train, ds.train_labels, ds.test, ds.test_labels)
real, ref = quality.real_sets(ds.test, nprobe)
zfix = keras.random.normal((64, cfg.vae.latent_dim), seed=7)

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime

points, wall, cpus, steps = [], 0.0, 0.0, 0
for epoch in range(cfg.train.epochs):
    order.epoch = epoch
    l0 = open("/proc/loadavg").read().split()[0]
    t, c = time.perf_counter(), cpu()
    h = model.fit(data.pipeline(ds.train, cfg, True, order=order), initial_epoch=epoch,
                  epochs=epoch + 1, verbose=0, shuffle=False)
    wall += time.perf_counter() - t; cpus += cpu() - c; steps += order.steps
    l1 = open("/proc/loadavg").read().split()[0]
    ev = evaluate.evaluate_vae(model, cfg, ds.test)
    q = quality.classifier_quality(clf, real, ref, evaluate.generate(model, nprobe))["model"]
    hist = np.array(q["class_histogram"]) / nprobe
    p = {"epoch": epoch + 1, "steps": steps, "images": steps * cfg.train.batch_size,
         "train_wall_s": round(wall, 1), "train_cpu_s": round(cpus, 1), "load": [l0, l1],
         "train_elbo": float(h.history["elbo"][-1]), "test_elbo": round(ev["elbo_nats"], 2),
         "kl": round(ev["kl_nats"], 2), "cs": round(float(q["classifier_score"]), 3),
         "fid": round(float(q["fid"]), 2), "min_share": round(float(hist.min()), 4),
         "max_share": round(float(hist.max()), 4), "hist": q["class_histogram"]}
    points.append(p)
    print(json.dumps(p), flush=True)
    img = keras.ops.convert_to_numpy(keras.ops.sigmoid(model.decode(zfix)))
    plots.save_png(plots.grid(plots.to_uint8(img, (0.0, 1.0)), 8), out.replace(".json", ".png"), 2)
    json.dump({"overrides": sets, "config": cfg.to_dict(), "points": points}, open(out, "w"), indent=1)
