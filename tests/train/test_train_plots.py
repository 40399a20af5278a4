"""fastvae.train.plots: reconstructions.png shows a fixed set of test examples from all over
the test split (test files may be sorted by class, as MNIST's are)."""

import torch

from fastvae.models import MLPVAE
from fastvae.train.plots import spread_indices, write_plots


def test_the_examples_shown_are_spread_over_the_test_set_and_fixed():
    idx = spread_indices(10000)
    assert torch.equal(idx, spread_indices(10000)) and len(idx) == 32 and bool((idx.diff() > 0).all())
    assert (idx * 32 // 10000).tolist() == list(range(32))  # one in each 32nd of the split
    # binarized MNIST's test file is sorted by digit, ~1000 of each: every digit at least 3 times
    assert int(torch.bincount(idx // 1000, minlength=10).min()) >= 3
    assert not torch.equal(idx, spread_indices(10000, seed=1))  # drawn at random within each 32nd
    assert (idx * 32 % 10000 != 0).any()  # not simply the first of each
    assert spread_indices(20).tolist() == list(range(20))  # a small split: all of it


def test_write_plots_shows_those_examples(tmp_path, monkeypatch):
    model = MLPVAE((1, 4, 4), hidden=8, latent_dim=2)
    test_x = (torch.rand(500, 1, 4, 4) < 0.5).to(torch.uint8)
    shown = []
    real = MLPVAE.reconstruct
    monkeypatch.setattr(MLPVAE, "reconstruct", lambda self, x: shown.append(x) or real(self, x))
    write_plots(model, test_x, [{"step": 6, "valid_neg_elbo": 9.0}], [(3, 10.0), (6, 8.0)], str(tmp_path))
    assert torch.equal(shown[0], test_x[spread_indices(500)])
    assert (tmp_path / "reconstructions.png").exists()
