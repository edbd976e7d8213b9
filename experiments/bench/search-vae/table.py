"""Print the README's table rows from the kept run folders (run.sh) and curve files (curve.py)."""
import json, glob, os
H = os.path.dirname(os.path.abspath(__file__))
SKIP = {"vae.latent_dim", "train.steps_per_execution", "train.epochs", "train.steps_per_epoch", "train.sample_grid"}
print("| run | latent | overrides (besides latent, steps) | steps | images | train s | steps/s | loadavg before/after (pytest samples) | test ELBO | IWAE (k) | CS | FID | class share min/max |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for d in sorted(glob.glob(f"{H}/[sf]*/")):
    n = os.path.basename(d.rstrip("/"))
    try:
        c = json.load(open(d + "config.json")); s = json.load(open(d + "summary.json")); w = json.load(open(d + "wall.json"))
    except FileNotFoundError:
        continue
    m = json.load(open(d + "metrics.json")) if os.path.exists(d + "metrics.json") else {}
    t = c["train"]; steps = t["epochs"] * t["steps_per_epoch"]
    args = w["args"].replace("--set ", "").split()
    ov = ", ".join(a for a in args if a.split("=")[0] not in SKIP)
    q = m.get("quality", {}).get("model", {}); h = q.get("class_histogram")
    share = f"{min(h)/sum(h):.3f} / {max(h)/sum(h):.3f}" if h else ""
    iw = m.get("iwae", {})
    print(f"| {n} | {c['vae']['latent_dim']} | {ov} | {steps} | {steps*t['batch_size']:,} | {s['seconds']:.0f} | {steps/s['seconds']:.1f} | "
          f"{w['loadavg_before'].split()[0]} / {w['loadavg_after'].split()[0]} ({w.get('samples_with_pytest_running','n/a')}) | "
          f"{m.get('elbo_nats', float('nan')):.2f} | {iw.get('iwae_nats', float('nan')):.2f} ({iw.get('k','')}) | "
          f"{q.get('classifier_score', float('nan')):.2f} | {q.get('fid', float('nan')):.1f} | {share} |")
print()
print("| curve | overrides | steps | train wall s | train CPU s | test ELBO | KL | CS (2000) | FID (2000) | class share min/max |")
print("|---|---|---|---|---|---|---|---|---|---|")
for f in sorted(glob.glob(f"{H}/curves/*.json")):
    r = json.load(open(f)); ov = ", ".join(a for a in r["overrides"] if a.split("=")[0] not in {"train.steps_per_execution", "train.steps_per_epoch"})
    for p in r["points"]:
        if p["steps"] % 3000 == 0 or p is r["points"][-1]:
            print(f"| {os.path.basename(f)[:-5]} | {ov} | {p['steps']} | {p['train_wall_s']} | {p['train_cpu_s']} | {p['test_elbo']} | {p['kl']} | {p['cs']} | {p['fid']} | {p['min_share']:.3f} / {p['max_share']:.3f} |")
