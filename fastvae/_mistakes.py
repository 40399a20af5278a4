"""Likely mistakes that ``validate_args=True`` points out without refusing the input: values
that are valid but almost surely not what was meant.

* Probabilities passed as logits: a decoder ported from code whose loss took probabilities
  still ends in a sigmoid, so every "logit" lies in [0, 1]. The loss is then finite and silently
  wrong (a Bernoulli loss of 589 nats instead of 647 in the issue that added this). Trained
  logits of a whole batch all in [0, 1] are next to impossible, so ``validate_args=True`` warns,
  once per process, for every likelihood whose decoder outputs logits (``spec.param``). A
  batch of one value (a zero-initialised output layer's zeros) says nothing either way and is
  let be.
"""

import warnings

import torch

_warned = set()  # the warnings given in this process


def warn_if_probabilities(spec, p):
    """``validate_args=True``: a UserWarning, once, when every value of the decoder output ``p``
    (B, ...) of a likelihood whose decoder outputs logits lies in [0, 1], and not all are the
    same (one reduction and a host sync; nothing when already warned, or for other
    likelihoods)."""
    if "probabilities" in _warned or spec.param != "logits" or p.numel() == 0:
        return
    lo, hi = torch.aminmax(p.detach())
    if bool((lo >= 0) & (hi <= 1) & (lo < hi)):
        _warned.add("probabilities")
        warnings.warn(f"these look like probabilities: every logit of this batch lies in [0, 1]. The {spec.title} "
                      f"likelihood takes logits: drop the decoder's final sigmoid (or pass torch.logit(probs)). "
                      f"(validate_args=True warns once.)", UserWarning, stacklevel=4)
