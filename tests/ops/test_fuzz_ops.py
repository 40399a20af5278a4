"""Differential fuzzing: every public op (``fuzz_cases.entries()``: the Gaussian ops, and each
likelihood of the registry with its ELBO and K-sample bound) on drawn cases, value and
gradients against the float64 reference (``fuzz_check.run``). The profile (FASTVAE_FUZZ:
``ci``, ``long``, ``random``; tests/conftest.py) sets how many cases, and whether they are the
same every run."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastvae

import fuzz_cases
import fuzz_check
import fuzz_regressions

ENTRIES = fuzz_cases.entries()


@pytest.mark.parametrize("name", sorted(ENTRIES))
@given(data=st.data())
def test_fused_op_matches_float64_truth(name, data):
    entry = ENTRIES[name]
    fuzz_check.run(entry, data.draw(fuzz_cases.specs(entry), label="spec"))


@pytest.mark.parametrize("spec", fuzz_regressions.REGRESSIONS, ids=lambda s: s.entry)
def test_kept_failures_stay_fixed(spec):
    fuzz_check.run(ENTRIES[spec.entry], spec)


def test_every_public_op_is_fuzzed():
    covered = {f for e in ENTRIES.values() for f in e.covers}
    public = set(fastvae.ops.__all__) | {"elbo_loss"}
    assert public <= covered, f"public ops without a fuzz entry (tests/fuzz_cases.py): {sorted(public - covered)}"
    for rec in fastvae.likelihoods.records():
        assert {f"likelihood[{rec.name}]", f"elbo_loss[{rec.name}]", f"iwae_loss[{rec.name}]"} <= set(ENTRIES)
