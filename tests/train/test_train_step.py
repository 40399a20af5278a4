"""fastvae.train.step: the learning-rate scaling and schedule, and the KL weight's warm-up."""

import pytest

from fastvae.train.args import build_parser
from fastvae.train.step import kl_weight, lr_factor, scaled_lr


def test_learning_rate_rules():
    args = build_parser().parse_args(["--batch-size", "512", "--lr", "1e-3", "--warmup-steps", "10",
                                      "--schedule", "cosine"])
    assert scaled_lr(args, world=2) == pytest.approx(1e-3 * 8 ** 0.5)
    args.lr_scaling = "linear"
    assert scaled_lr(args, world=2) == pytest.approx(8e-3)
    assert lr_factor(args, 0, 110) == pytest.approx(0.1)
    assert lr_factor(args, 10, 110) == pytest.approx(1.0)
    assert lr_factor(args, 60, 110) == pytest.approx(0.5)
    args.kl_warmup, args.beta = 4, 2.0
    assert [kl_weight(args, s) for s in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]
