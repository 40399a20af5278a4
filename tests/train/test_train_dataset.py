"""fastvae.train.dataset: the data set of a run and its fixed random subsets."""

import pytest
import torch

from fastvae.train.dataset import random_subset


def test_evaluation_subsets_are_random_and_fixed():
    x = torch.arange(1000)
    a, b = random_subset(x, 100, "test", 0), random_subset(x, 100, "test", 0)
    assert torch.equal(a, b) and len(a.unique()) == 100 and a.float().mean() > 300  # not the first 100
    assert not torch.equal(a, random_subset(x, 100, "valid", 0))
    with pytest.raises(ValueError, match="1001"):
        random_subset(x, 1001, "test", 0)
