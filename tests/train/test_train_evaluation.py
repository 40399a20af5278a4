"""fastvae.train.evaluation: how many rows the test NLL puts through the decoder at once."""

from fastvae.train.args import build_parser
from fastvae.train.evaluation import eval_rows


def test_eval_rows_shrink_with_the_image():
    args = build_parser().parse_args([])
    assert eval_rows(args, (1, 28, 28)) == 65536  # as before for MNIST-sized data
    assert eval_rows(args, (3, 64, 64)) == 4181  # the same number of pixels per call
    assert eval_rows(build_parser().parse_args(["--eval-rows", "100"]), (3, 64, 64)) == 100
