"""fastvae.train.args: arguments the parser refuses (one line on stderr, exit status 2) and the
--help text."""

import re

import pytest

from fastvae import train
from fastvae.train.args import build_parser

REFUSED = [["--hidden", "400,0"], ["--batch-size", "0"], ["--batch-size", "-3"], ["--batch-size", "nan"],
           ["--batch-size", "1.5"], ["--lr", "inf"], ["--lr", "0"], ["--lr", "abc"], ["--beta", "nan"],
           ["--beta", "-1"], ["--hidden", ""], ["--hidden", "400,,200"], ["--conv-channels", "0"],
           ["--device", "tpu:0"], ["--device", "nonsense"], ["--device", "meta"], ["--epochs", "0"],
           ["--latent-dim", "-1"], ["--warmup-steps", "-1"], ["--kl-warmup", "1.5"], ["--save-every", "-1"],
           ["--stop-after", "0"], ["--eval-samples", "0"], ["--eval-rows", "0"], ["--log-every", "0"],
           ["--num-train", "0"], ["--num-test", "-5"], ["--base-batch-size", "0"], ["--seed", "-1"],
           ["--seed", str(2**70)], ["--seed", "x"], ["--arch", "resnet"], ["--activation", "swish"],
           ["--data", "cifar"], ["--image-size", "32"], ["--channels", "2"], ["--lr-scaling", "cubic"],
           ["--schedule", "step"], ["--amp", "fp16"], ["--bogus"], ["--lr"], ["--likelihood", "laplace"],
           ["--logscale", "wide"], ["--logscale", "inf"], ["--objective", "vimco"], ["--samples", "0"]]


@pytest.mark.parametrize("argv", REFUSED, ids=" ".join)
def test_bad_arguments_are_one_line_and_status_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m fastvae.train: error: "), err


def _option_help(text):
    """{option: its help text} from the --help output."""
    blocks, name = {}, None
    for line in text.splitlines():
        m = re.match(r"  (-[-\w]+)", line)
        if m:
            name = m.group(1)
            blocks[name] = line[m.end():]
        elif name and line.startswith("    "):
            blocks[name] += " " + line.strip()
        else:
            name = None
    return blocks


def test_every_option_has_help_and_one_default_at_most():
    text = build_parser().format_help()
    helps = _option_help(text)
    assert len(helps) == len([a for a in build_parser()._actions if a.option_strings]), sorted(helps)
    for option, help_text in helps.items():
        words = re.sub(r"\{[^}]*\}|[A-Z_]{2,}", "", help_text).split()  # without metavars and choices
        assert words, f"{option} has no help"
        assert help_text.lower().count("default") <= 1, (option, help_text)
    assert "(default: 0.001)" in helps["--lr"] and "(default: relu)" in helps["--activation"]
    assert "default: None" not in text and "default: False" not in text
