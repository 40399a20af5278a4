"""``benchmarks/harness/cases.py``: the least bytes of every case and the sweeps."""

from benchmarks.harness import cases
from benchmarks.harness.case_types import Config
from benchmarks.harness.cases import CASES


def test_least_bytes_table_covers_every_timed_mode():
    for name, op in CASES.items():
        for mode in op.modes:
            c = Config(name, 4, "bfloat16", dim=10, latent=3, targets="uint8", model="mlp", samples=2)
            nbytes = cases.least_bytes(c, mode)
            assert (nbytes is None) == (mode == "train")  # a training step's bytes are the model's
    # bfloat16 logits, uint8 targets: 2 + 1 bytes read, 2 written per element; 8 bytes per row
    c = Config("bernoulli_ll", 4, "bfloat16", dim=10, targets="uint8")
    assert cases.least_bytes(c, "fwd+bwd") == 4 * (10 * 5 + 8)


def test_least_bytes_formulas():
    f32 = dict(batch=1000, dtype="float32")
    # Gaussian: mu, logvar read and z written (4 B each), kl written (4 B per row)
    assert cases.least_bytes(Config("reparameterize_kl", latent=64, **f32), "fwd") == 1000 * (3 * 64 * 4 + 4)
    # backward: mu, logvar, grad_z read, grad_mu, grad_logvar written; grad_kl read per row
    assert cases.least_bytes(Config("reparameterize_kl", latent=64, **f32), "bwd") == 1000 * (5 * 64 * 4 + 4)
    # bf16 logits, uint8 targets: logits 2 B + targets 1 B read, grad 2 B written; ll and grad_ll per row
    c = Config("bernoulli_ll", batch=1000, dtype="bfloat16", dim=784, targets="uint8")
    assert cases.least_bytes(c, "fwd+bwd") == 1000 * (784 * 5 + 8)
    c = Config("elbo_loss", dim=784, latent=64, targets="uint8", **f32)
    assert cases.least_bytes(c, "fwd+bwd") == 1000 * (784 * 9 + 8) + 1000 * (8 * 64 * 4 + 8)
    # an image batch counts C*H*W elements per example; float targets in the logits' dtype
    c = Config("gaussian_ll", image="3x64x64", targets="float", **f32)
    assert c.example_shape() == (3, 64, 64) and cases.least_bytes(c, "fwd") == 1000 * (12288 * 8 + 4)
    # K samples: logits and grad_logits K times, targets once; z and grad_z K times, mu and logvar
    # read twice and their gradients written once; log_ratio and its gradient K per row
    c = Config("iwae_loss", samples=5, dim=784, latent=64, targets="uint8", **f32)
    assert cases.least_bytes(c, "fwd+bwd") == 1000 * (64 * 4 * 16 + 40) + 1000 * 784 * (40 + 1)
    # a hierarchy's levels: each reads mu, logvar and the prior twice and grad_z once, writes z and
    # four gradients (14 x B*L), and its kl and the kl's gradient (B, float32)
    c = Config("hierarchy", latent=1024, levels=20, **f32)
    assert cases.least_bytes(c, "fwd+bwd") == 20 * 1000 * (14 * 1024 * 4 + 8)
    assert c.label() == "B=1000 levels=20 L=1024"


def test_every_new_size_is_a_record_key_and_in_the_label():
    c = Config("iwae_loss", 8, "float32", samples=50, image="1x28x28", latent=4, targets="uint8")
    assert Config.of({**{k: getattr(c, k) for k in Config.keys()}, "mode": "fwd+bwd"}) == c
    assert c.label() == "B=8 K=50 image=1x28x28 L=4 x=uint8"


def test_sweep_includes_the_headline_configurations():
    memory = 141 * 2**30  # an H200
    elbo = [c for fam in cases.configs("elbo_loss", "gpu", ["float32", "bfloat16"], memory) for c in fam]
    for dtype in ("float32", "bfloat16"):
        assert Config("elbo_loss", 65536, dtype, dim=784, latent=64, targets="uint8") in elbo
    rkl = [c for fam in cases.configs("reparameterize_kl", "gpu", ["float32"], memory) for c in fam]
    for batch in (256, 65536):
        assert Config("reparameterize_kl", batch, "float32", latent=64) in rkl
    assert max(c.batch for c in rkl) >= 2**22  # up to sizes that fill the GPU's memory


def test_every_case_is_complete():
    # one entry per case holds all it needs: families in every sweep, a formula for every fused mode
    for name, case in CASES.items():
        assert set(case.sweeps) == set(cases.DEFAULT_DTYPES), name
        assert set(case.least_bytes) <= set(case.modes), name
        if case.build is None:  # a fused op: the three implementations, its inputs and forward
            assert case.inputs and case.forward and set(case.least_bytes) == set(case.modes), name
    assert list(cases.least_bytes_formulas())[0] == "reparameterize_kl fwd"
    memory = 141 * 2**30
    for config, mode in cases.HEADLINE:  # the headline configurations are in the GPU sweep
        sweep = [c for fam in cases.configs(config.op, "gpu", [config.dtype], memory) for c in fam]
        assert config in sweep and mode in CASES[config.op].modes


def test_one_headline_for_the_report_and_the_gpu_check():
    # the README's headline: elbo_loss and reparameterize_kl fwd+bwd at B = 65536, D = 784,
    # latent 64, float32 and bfloat16 logits, uint8 and float targets
    want = {Config("elbo_loss", 65536, dt, dim=784, latent=64, targets=t) for dt in ("float32", "bfloat16")
            for t in ("uint8", "float")} | {Config("reparameterize_kl", 65536, dt, latent=64)
                                            for dt in ("float32", "bfloat16")}
    assert {c for c, _ in cases.HEADLINE} == want and {m for _, m in cases.HEADLINE} == {"fwd+bwd"}
    memory = 80 * 2**30  # an H100
    for config, mode in cases.HEADLINE + cases.LAUNCH_BOUND:  # run.py --quick measures them too
        quick = [c for fam in cases.configs(config.op, "gpu_quick", [config.dtype], memory) for c in fam]
        assert config in quick, config
