"""The profile summary: op categories and shares of busy time from a real trace."""
from __future__ import annotations

import pytest

from gan_vae_tf import data, models, profiling
from conftest import tiny_config


@pytest.mark.parametrize("op_type,name,category", [
    ("Conv2DBackpropFilter", "gradient_tape/generator/conv2d_transpose/x", "convolutions"),
    ("_FusedConv2D", "discriminator/conv2d/BiasAdd", "convolutions"),
    ("_MklNativeConv2DBackpropFilterWithBias", "gradient_tape/discriminator/conv2d/x", "convolutions"),
    ("_MklNativeFusedConv2D", "discriminator/conv2d/BiasAdd", "convolutions"),
    ("MatMul", "generator/dense/MatMul", "matmul"),
    ("Mul", "discriminator/dropout/stateless_dropout/Mul", "dropout"),
    ("StatelessRandomUniformV2", "discriminator/dropout/stateless_random_uniform", "dropout"),
    ("Tile", "gradient_tape/generator/batch_normalization_1/moments/Tile", "batch norm"),
    ("StatelessRandomNormalV2", "random/normal", "random numbers"),
    ("AssignSubVariableOp", "adam/AssignSub", "optimizer"),
    ("IteratorGetNext", "IteratorGetNext", "input pipeline"),
    ("LeakyRelu", "generator/leaky_re_lu/LeakyRelu", "activations and other elementwise"),
])
def test_ops_fall_into_their_category(op_type, name, category):
    assert profiling.op_category(op_type, name) == category


def test_summary_leaves_out_idle_time_and_shares_sum_to_one():
    rows = [{"type": "IDLE", "operation": "IDLE", "total_self_time": 900.0},
            {"type": "Conv2D", "operation": "d/conv", "total_self_time": 75.0},
            {"type": "LeakyRelu", "operation": "d/relu", "total_self_time": 25.0}]
    s = profiling.summarize(rows)
    assert s["busy_us"] == 100.0
    assert s["categories"] == {"convolutions": 0.75, "activations and other elementwise": 0.25}
    assert list(s["op_types"]) == ["Conv2D", "LeakyRelu"]


def test_summary_of_an_idle_trace_is_an_error():
    with pytest.raises(ValueError, match="no busy"):
        profiling.summarize([{"type": "IDLE", "operation": "IDLE", "total_self_time": 5.0}])


def test_profiling_real_train_steps_finds_their_convolutions(tmp_path):
    cfg = tiny_config("gan-mnist")
    model = models.build(cfg)
    ds = data.pipeline(data.synthetic(64).train, cfg, training=True).repeat()
    model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
    s = profiling.profile_fit(model, ds, steps=3, logdir=tmp_path)
    assert s["categories"]["convolutions"] > 0.0
    assert abs(sum(s["categories"].values()) - 1.0) < 1e-9
