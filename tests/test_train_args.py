"""fastvae.train.args: arguments the parser refuses (argparse exits with status 2)."""

import pytest

from fastvae import train


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        train.main(["--hidden", "400,0"])
    for bad in (["--batch-size", "0"], ["--lr", "inf"], ["--beta", "nan"], ["--beta", "-1"], ["--hidden", ""],
                ["--hidden", "400,,200"], ["--device", "tpu:0"], ["--device", "nonsense"]):
        with pytest.raises(SystemExit):
            train.main(bad)
