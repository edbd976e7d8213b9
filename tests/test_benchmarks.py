"""Benchmark helpers: TimeBudget probes on a training-time schedule that does not charge the
probes' own time; the profile summary sorts ops into categories and shares of busy time."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from benchmarks import profiling
from benchmarks.common import TimeBudget, arm_config, build_arm
from gan_vae_tf import data, kinds
from helpers import pipeline, tiny_config


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    stop_training = False


def drive(
    budget: float, every: float, step_seconds: float, probe_seconds: float, max_steps: int = 100
):
    clock = FakeClock()

    def probe(model, spent, steps) -> dict:
        clock.now += probe_seconds
        return {"score": clock.now, "told": (spent, steps)}

    cb = TimeBudget(budget, every, probe, batch_size=4, clock=clock)
    cb.set_model(FakeModel())
    cb.on_train_begin()
    for step in range(max_steps):
        clock.now += step_seconds
        cb.on_train_batch_end(step)
        if cb.model.stop_training:
            break
    return cb


def test_time_budget_probes_on_schedule_and_stops_when_spent():
    cb = drive(budget=10.0, every=3.0, step_seconds=1.0, probe_seconds=0.0)
    assert [p["train_seconds"] for p in cb.points] == [0.0, 3.0, 6.0, 9.0, 10.0]
    assert cb.steps == 10 and cb.points[-1]["images_seen"] == 40
    assert cb.model.stop_training
    assert all(p["told"] == (p["train_seconds"], p["steps"]) for p in cb.points)


def test_time_budget_does_not_charge_probe_time_to_training():
    cb = drive(budget=10.0, every=5.0, step_seconds=1.0, probe_seconds=100.0)
    assert [p["train_seconds"] for p in cb.points] == [0.0, 5.0, 10.0]
    assert cb.steps == 10


def test_time_budget_rejects_a_non_positive_budget():
    with pytest.raises(ValueError, match="positive"):
        TimeBudget(0, 1.0, lambda m, s, n: {}, batch_size=1)


def test_time_budget_counts_every_step_of_a_multi_step_call():
    clock, told = FakeClock(), []
    cb = TimeBudget(100.0, 1.0, lambda m, s, n: told.append(n) or {}, batch_size=4, clock=clock)
    cb.set_model(FakeModel())
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    for end_step in (9, 19, 29):  # ten steps per call, as Keras reports them
        clock.now += 1.0
        cb.on_train_batch_end(end_step)
    assert told == [0, 10, 20, 30]
    assert cb.points[-1]["images_seen"] == 120


def test_time_budget_stops_a_real_fit_before_its_epochs_end():
    cfg = tiny_config("gan-mnist")
    model = kinds.build(cfg)
    images = data.synthetic(64).train
    cb = TimeBudget(
        1e-9,
        1.0,
        lambda m, s, n: {"mean": float(np.mean(m.sample(2)))},
        batch_size=cfg.train.batch_size,
    )
    model.fit(
        pipeline(images, cfg, training=True),
        epochs=50,
        callbacks=[cb],
        verbose=0,
        shuffle=False,
    )
    # Stopped after the first call: its steps (up to steps_per_execution), counted exactly.
    assert cb.steps == int(model.g_optimizer.iterations)
    assert 1 <= cb.steps <= cfg.train.steps_per_execution
    assert len(cb.points) == 2 and 0.0 <= cb.points[-1]["mean"] <= 1.0


@pytest.mark.parametrize(
    "op_type,name,category",
    [
        ("Conv2DBackpropFilter", "gradient_tape/generator/conv2d_transpose/x", "convolutions"),
        ("_FusedConv2D", "discriminator/conv2d/BiasAdd", "convolutions"),
        ("MatMul", "generator/dense/MatMul", "matmul"),
        ("Mul", "discriminator/dropout/stateless_dropout/Mul", "dropout"),
        ("StatelessRandomUniformV2", "discriminator/dropout/stateless_random_uniform", "dropout"),
        ("Tile", "gradient_tape/generator/batch_normalization_1/moments/Tile", "batch norm"),
        ("StatelessRandomNormalV2", "random/normal", "random numbers"),
        ("AssignSubVariableOp", "adam/AssignSub", "optimizer"),
        ("IteratorGetNext", "IteratorGetNext", "input pipeline"),
        (
            "_MklNativeConv2DBackpropInput",
            "gradient_tape/generator/conv2d_transpose/x",
            "convolutions",
        ),
        ("_MklNativeConv2DBackpropFilterWithBias", "gradient_tape/d/conv2d/x", "convolutions"),
        ("_MklNativeFusedConv2D", "discriminator/conv2d/BiasAdd", "convolutions"),
        ("_MklMatMul", "generator/dense/MatMul", "matmul"),
        ("LeakyRelu", "generator/leaky_re_lu/LeakyRelu", "activations and other elementwise"),
    ],
)
def test_ops_fall_into_their_category(op_type, name, category):
    assert profiling.op_category(op_type, name) == category


def test_summary_leaves_out_idle_time_and_shares_sum_to_one():
    rows = [
        {"type": "IDLE", "operation": "IDLE", "total_self_time": 900.0},
        {"type": "Conv2D", "operation": "d/conv", "total_self_time": 75.0},
        {"type": "LeakyRelu", "operation": "d/relu", "total_self_time": 25.0},
    ]
    s = profiling.summarize(rows)
    assert s["busy_us"] == 100.0
    assert s["categories"] == {"convolutions": 0.75, "activations and other elementwise": 0.25}
    assert list(s["op_types"]) == ["Conv2D", "LeakyRelu"]


def test_summary_of_an_idle_trace_is_an_error():
    with pytest.raises(ValueError, match="no busy"):
        profiling.summarize([{"type": "IDLE", "operation": "IDLE", "total_self_time": 5.0}])


def test_profiling_real_train_steps_finds_their_convolutions(tmp_path):
    cfg = tiny_config("gan-mnist")
    model = kinds.build(cfg)
    ds = pipeline(data.synthetic(64).train, cfg, training=True).repeat()
    model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    s = profiling.profile_fit(model, ds, steps=3, logdir=tmp_path)
    assert s["categories"]["convolutions"] > 0.0
    assert abs(sum(s["categories"].values()) - 1.0) < 1e-9


def test_bench_steps_extra_average_at_the_models_decay_matches_the_models_own_ema():
    from dataclasses import replace

    from benchmarks.bench_steps import extra_averages

    cfg = tiny_config("gan-mnist", learning_rate=0.02)
    cfg = replace(cfg, train=replace(cfg.train, steps_per_execution=1))
    model = kinds.build(replace(cfg, gan=replace(cfg.gan, ema_decay=0.9)))
    [(_, copy)], callback = extra_averages(model, [0.9])
    images = pipeline(data.synthetic(40).train, cfg, training=True)
    model.fit(images, epochs=2, verbose=0, shuffle=False, callbacks=[callback])
    for a, b in zip(copy.weights, model.generator_ema.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(copy.weights[0].numpy(), model.generator.weights[0].numpy())


def test_bench_steps_without_extra_averages_accepts_several_steps_per_execution():
    from dataclasses import replace

    from benchmarks.bench_steps import extra_averages

    cfg = tiny_config("gan-mnist")
    model = kinds.build(replace(cfg, train=replace(cfg.train, steps_per_execution=10)))
    assert model.steps_per_execution == 10
    assert extra_averages(model, []) == ([], None)
    with pytest.raises(ValueError, match="steps_per_execution 1"):
        extra_averages(model, [0.99])


def quality_arm(name: str, minutes: float, scores: list[float]) -> dict:
    """An arm scored once a minute, as bench_quality records it."""
    points = [
        {"train_seconds": 60.0 * i, "classifier_score": c, "fid": 100.0 / (1 + c)}
        for i, c in enumerate(scores)
    ]
    return {"arm": name, "budget_minutes": minutes, "points": points}


def test_quality_ratio_is_a_lower_bound_over_the_baselines_own_longer_budget():
    from benchmarks.bench_quality import thresholds_table

    baseline = quality_arm("report", 60.0, [1.0] * 61)
    default = quality_arm("default", 10.0, [1.0, 7.0, 8.5, 9.5] + [9.5] * 7)
    rows, table = thresholds_table("mnist", [baseline, default], {"fid": 2.0})
    score8 = rows[0]
    assert score8["seconds"] == [None, 120.0]
    assert score8["ratio"] == 30.0 and score8["ratio_is_lower_bound"]
    assert "> 60 (not reached)" in table and "> 30.0x" in table


def test_quality_ratio_is_measured_when_the_baseline_gets_there():
    from benchmarks.bench_quality import thresholds_table

    baseline = quality_arm("report", 60.0, [1.0] * 40 + [8.2] * 21)
    default = quality_arm("default", 10.0, [1.0, 7.0, 8.5] + [8.5] * 8)
    rows, _ = thresholds_table("mnist", [baseline, default], {"fid": 2.0})
    assert rows[0]["seconds"] == [2400.0, 120.0]
    assert rows[0]["ratio"] == 20.0 and not rows[0]["ratio_is_lower_bound"]
    assert rows[1]["seconds"] == [None, None] and rows[1]["ratio"] is None


@pytest.mark.parametrize("override, expected", [(None, "mixed_bfloat16"), ("float32", "float32")])
def test_a_benchmark_arm_is_built_in_its_own_precision_unless_overridden(override, expected):
    cfg = arm_config("gan-mnist:train.precision=mixed_bfloat16,gan.ema_decay=0.9", seed=3)
    assert cfg.train.seed == 3 and cfg.gan.ema_decay == 0.9
    model, policy, _ = build_arm(cfg, override)
    assert policy == expected
    for net in (model.generator, model.discriminator):
        assert net.layers[0].dtype_policy.name == expected  # a hidden layer, not the float32 head


def test_layer_costs_name_every_layer_in_order_with_its_shapes_and_a_positive_time():
    from benchmarks.bench_layers import call_overhead_ms, layer_costs, table

    net = kinds.build(tiny_config("gan-mnist")).discriminator
    rows = layer_costs(net, batch=4, calls=1, reps=2)
    assert [r["layer"] for r in rows] == [layer.name for layer in net.layers]
    assert rows[0]["input"] == (28, 28, 1) and rows[-1]["output"] == (1,)
    assert all(r["ms"] > 0 for r in rows)
    assert table(rows).count("\n") == len(rows) + 1
    assert call_overhead_ms(batch=4, calls=1, reps=2) > 0


@pytest.mark.parametrize(
    "module, argv",
    [
        ("bench", ["--presets", "gan-mnist,nosuch"]),
        ("bench_quality", ["--arms", "nosuch"]),
        ("bench_steps", ["nosuch", "--out", "unused.json"]),
        ("bench_checkpoint", ["--presets", "nosuch"]),
        ("profile_steps", ["--presets", "nosuch"]),
        ("bench_layers", ["nosuch"]),
    ],
)
def test_a_benchmark_names_an_unknown_preset_in_one_line_and_exits_2(
    module, argv, monkeypatch, capsys, tmp_path
):
    import importlib

    from gan_vae_tf import errors

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [module, *argv])
    main = importlib.import_module(f"benchmarks.{module}").main
    with pytest.raises(SystemExit) as stop:
        errors.exit_with(main)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown preset 'nosuch'") and err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing written before the name was checked


def vae_arm(name: str, minutes: float, elbos: list[float], folder: str) -> dict:
    """A VAE arm scored once a minute (a moment after it, as TimeBudget probes): test ELBO,
    and the digit metrics of its samples."""
    points = [
        {
            "train_seconds": 60.0 * i + (0.7 if i else 0.0),
            "steps": 100 * i,
            "images_seen": 3200 * i,
            "test_elbo": e,
            "classifier_score": 5.0 + i / 10,
            "fid": 50.0 - i,
            "precision": 0.5,
            "recall": 0.5,
        }
        for i, e in enumerate(elbos)
    ]
    return {
        "arm": name,
        "budget_minutes": minutes,
        "points": points,
        "precision": "float32",
        "batch_size": 32,
        "grids": folder,
    }


def test_a_vae_suite_times_the_default_to_the_report_settings_own_10_minute_elbo():
    from benchmarks.bench_quality import thresholds_table

    report = vae_arm("vae-mnist-report", 20.0, [-500.0 + 20 * i for i in range(21)], "r")
    default = vae_arm("vae-mnist", 10.0, [-500.0, -300.0, -150.0] + [-90.0] * 8, "d")
    rows, table = thresholds_table("vae-mnist", [report, default], {"fid": 2.0})
    assert rows[0]["threshold"].startswith("test_elbo >= -300 (vae-mnist-report at 10 min)")
    assert rows[0]["seconds"] == [600.7, 60.7] and rows[0]["ratio"] == pytest.approx(600.7 / 60.7)
    assert rows[1]["seconds"] == [None, None]  # -78 nats: neither got there
    # The default met it at its first probe: its 60.7 s is an upper bound, so the ratio is a
    # lower bound.
    assert rows[0]["ratio_is_lower_bound"]
    assert "| <= 1.0 | >= 9.9x |" in table


def test_vae_suite_results_are_written_with_an_elbo_panel_and_no_elbo_floor(tmp_path):
    from PIL import Image

    from benchmarks.bench_quality import write_results

    grids = tmp_path / "quality-vae-mnist-grids"
    arms = [
        vae_arm("report", 2.0, [-300.0, -250.0, -200.0], "r"),
        vae_arm("default", 2.0, [-300.0, -150.0, -100.0], "d"),
    ]
    for arm in arms:
        (tmp_path / arm["grids"]).mkdir()
        for point in arm["points"]:
            png = f"minute_{point['train_seconds'] / 60:05.2f}.png"  # as run_arm names them
            Image.new("L", (20, 20)).save(tmp_path / arm["grids"] / png)
    header = {
        "suite": "vae-mnist",
        "machine": {"cpu": "test CPU", "cores": 2},
        "budget_minutes": 2.0,
        "every_seconds": 60.0,
        "floor": {"classifier_score": 9.7, "fid": 1.4, "precision": 0.8, "recall": 0.8},
        "extra": {"images_per_score": 100},
    }
    result = write_results(header, arms, tmp_path, "quality-vae-mnist")
    md = (tmp_path / "quality-vae-mnist.md").read_text()
    assert "| minutes | steps | images seen | test_elbo | classifier_score" in md
    assert "test ELBO on 1000 held-out images" in md
    assert result["thresholds"][0]["seconds"] == [120.7, 60.7]
    with Image.open(tmp_path / "quality-vae-mnist.png") as curves:
        assert curves.width == 3 * 520  # three panels: test ELBO, classifier score, FID
    assert (tmp_path / "quality-vae-mnist-grids.png").is_file()
    assert not grids.exists()  # the arms' own grids are where their "grids" entries say


def test_the_cgan_suite_times_class_accuracy_for_the_conditional_arm_only(tmp_path):
    """The unconditional default has no class to be asked for: its accuracy cells say so,
    its curve is left out, and it has no time to an accuracy threshold, nor a ratio."""
    from PIL import Image

    from benchmarks.bench_quality import write_results

    def arm(name: str, accuracies: list[float] | None) -> dict:
        scores = [6.0, 8.2, 8.7]
        points = [
            {
                "train_seconds": 60.0 * i + 0.5,
                "steps": 100 * i,
                "images_seen": 6400 * i,
                "classifier_score": c,
                "fid": 30.0 / (i + 1),
                "precision": 0.6,
                "recall": 0.8,
                **(
                    {}
                    if accuracies is None
                    else {"accuracy": accuracies[i], "lowest_class_accuracy": accuracies[i] - 0.05}
                ),
            }
            for i, c in enumerate(scores)
        ]
        (tmp_path / name).mkdir()
        for p in points:
            Image.new("L", (20, 20)).save(
                tmp_path / name / f"minute_{p['train_seconds'] / 60:05.2f}.png"
            )
        return {
            "arm": name,
            "budget_minutes": 2.0,
            "points": points,
            "precision": "float32",
            "batch_size": 64,
            "grids": name,
        }

    header = {
        "suite": "cgan-mnist",
        "machine": {"cpu": "test CPU", "cores": 2},
        "budget_minutes": 2.0,
        "every_seconds": 60.0,
        "floor": {"classifier_score": 9.7, "fid": 1.4, "precision": 0.8, "recall": 0.8},
        "extra": {"images_per_score": 100},
    }
    arms = [arm("gan-mnist", None), arm("cgan-mnist", [0.5, 0.96, 0.98])]
    result = write_results(header, arms, tmp_path, "quality-cgan-mnist")
    rows = {r["threshold"]: r for r in result["thresholds"]}
    assert rows["accuracy >= 0.97"]["seconds"] == [None, 120.5]
    assert rows["accuracy >= 0.97"]["ratio"] is None
    assert "| accuracy >= 0.97 | n/a (not measured) | 2.0 | n/a |" in result["thresholds_markdown"]
    assert rows["lowest_class_accuracy >= 0.9"]["seconds"] == [None, 60.5]
    assert rows["classifier_score >= 8.5"]["seconds"] == [120.5, 120.5]
    md = (tmp_path / "quality-cgan-mnist.md").read_text()
    assert "| accuracy | lowest_class_accuracy |" in md and "| — | — |" in md
    with Image.open(tmp_path / "quality-cgan-mnist.png") as curves:
        assert curves.width == 3 * 520  # classifier score, FID, class accuracy


def test_every_quality_suite_has_thresholds_and_arms_that_build_their_configs():
    from benchmarks.bench_quality import SUITES, THRESHOLDS, metric_keys

    for suite, spec in SUITES.items():
        keys = {k for k, _ in metric_keys(suite)}
        assert {key for key, *_ in THRESHOLDS[suite]} <= keys, suite
        # A bad preset or --set key raises here; a suite scores class accuracy if an arm has it.
        conditional = [bool(arm_config(arm, seed=0).classes) for arm in spec["arms"]]
        assert any(conditional) == bool(spec.get("conditional")), suite
