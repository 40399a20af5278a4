"""Cases the fuzzing found failing, kept as regression cases: ``tests/ops/test_fuzz_ops.py``
runs each every time, whatever the profile. A failing case prints as ``Spec(...)`` (hypothesis'
"Falsifying example"): paste it here with a line saying what it found."""

from fuzz_cases import Spec

REGRESSIONS = [
    # bugs: soft targets of the K-sample bound got a gradient with K * B rows (RuntimeError)
    Spec(entry="importance_weighted[bernoulli]", B=16, F=(3, 1), dtype="float64", seed=1, K=5,
         options=(("estimator", "iwae"), ("latent", 4), ("noise", "given"), ("reduction", "none"),
                  ("target", "float"), ("values", "ordinary"), ("x_grad", True)),
         layouts=(("W", "contiguous"), ("eps", "step-2"), ("logvar", "contiguous"), ("mu", "step-2"),
                  ("x", "contiguous")), upstream=("strided",)),
    Spec(entry="iwae_loss[gaussian]", B=8, F=(3, 17), dtype="bfloat16", seed=135256, K=3,
         options=(("form", "feature"), ("reduction", "none"), ("target", "float"), ("values", "ordinary"),
                  ("x_grad", True)),
         layouts=(("extra0", "contiguous"), ("log_ratio", "step-2"), ("recon", "contiguous"), ("x", "contiguous")),
         upstream=("scaled",)),
    # bugs: a logscale whose memory repeats one value got its gradient in the wrong shape
    Spec(entry="likelihood[gaussian]", B=31, F=(7,), dtype="float32", seed=1131566, tiles="gpu",
         options=(("form", "feature"), ("target", "float"), ("values", "ordinary"), ("x_grad", False)),
         layouts=(("extra0", "expanded"), ("p", "contiguous"), ("x", "contiguous")), upstream=("ones",)),
    Spec(entry="likelihood[gaussian]", B=33, F=(17,), dtype="bfloat16", seed=268435456, tiles="gpu",
         options=(("form", "element"), ("target", "uint8"), ("values", "ordinary"), ("x_grad", False)),
         layouts=(("extra0", "expanded"), ("p", "step-2"), ("x", "contiguous")), upstream=("ones",)),
    Spec(entry="iwae_loss[gaussian]", B=8, F=(1, 33), dtype="bfloat16", seed=2056, K=1,
         options=(("form", "row"), ("reduction", "mean"), ("target", "float"), ("values", "extreme"),
                  ("x_grad", True)),
         layouts=(("extra0", "expanded"), ("log_ratio", "offset"), ("recon", "batch-fastest"), ("x", "permuted")),
         upstream=("zero",)),
    # blind spot (a kernel broken on purpose, not caught): the logscale's partial sums, stored in
    # the forward, summed again only by the programs with a row whose upstream gradient is not 1
    Spec(entry="likelihood[gaussian]", B=17, F=(3, 5), dtype="float32", seed=13,
         options=(("form", "feature"), ("target", "float"), ("values", "ordinary"), ("x_grad", False)),
         layouts=(("extra0", "contiguous"), ("p", "contiguous"), ("x", "contiguous")), upstream=("one-row",)),
    Spec(entry="likelihood[gaussian]", B=7, F=(33,), dtype="bfloat16", seed=14, tiles="gpu",
         options=(("form", "feature"), ("target", "uint8"), ("values", "ordinary"), ("x_grad", True)),
         layouts=(("extra0", "step-2"), ("p", "offset"), ("x", "contiguous")), upstream=("one-row",)),
    # tolerances: weights of a softmax over float32 sums of 1e4 logits (``fuzz_check.conditioning``)
    Spec(entry="iwae_loss[bernoulli]", B=5, F=(3, 2, 3), dtype="bfloat16", seed=251209210, K=3,
         options=(("reduction", "mean"), ("target", "bool"), ("values", "extreme"), ("x_grad", False)),
         layouts=(("log_ratio", "batch-fastest"), ("recon", "step-2"), ("x", "permuted")), upstream=("ones",)),
    Spec(entry="iwae_loss[gaussian]", B=17, F=(63,), dtype="float32", seed=18058, K=5,
         options=(("form", "sample"), ("reduction", "sum"), ("target", "bool"), ("values", "extreme"),
                  ("x_grad", True)),
         layouts=(("extra0", "contiguous"), ("log_ratio", "offset"), ("recon", "contiguous"), ("x", "offset")),
         upstream=("bf16-strided",)),
    # tolerances: uint8 targets rounded to float32 as k / 255, where x - mean cancels at logscale -20
    # (``fuzz_check.scaled_targets``)
    Spec(entry="elbo_loss[gaussian]", B=5, F=(127,), dtype="float32", seed=255473560,
         options=(("beta", 1.0), ("decoder", "mean"), ("form", "feature"), ("kl", "mu, logvar"), ("latent", 1),
                  ("reduction", "mean"), ("target", "uint8"), ("terms", False), ("values", "extreme"),
                  ("x_grad", False)),
         layouts=(("extra0", "contiguous"), ("logvar", "contiguous"), ("mu", "contiguous"), ("p", "contiguous"),
                  ("x", "contiguous")), upstream=("ones",)),
    # tolerances: z beyond float16's range (inf, as the truth rounded to float16 is)
    Spec(entry="reparameterize", B=16, F=(127,), dtype="float16", seed=183204905,
         options=(("noise", "given"), ("values", "extreme")),
         layouts=(("eps", "expanded"), ("logvar", "expanded"), ("mu", "expanded")), upstream=("random",)),
    # tolerances: the float64 reference's log q cancels at logvar -30 (``Entry.tol_dtype``)
    Spec(entry="reparameterize_iw", B=8, F=(5,), dtype="float64", seed=7634, K=3,
         options=(("noise", "drawn"), ("path", True), ("values", "extreme")),
         layouts=(("logvar", "step-2"), ("mu", "step-2")), upstream=("bf16-strided", "scaled")),
    # tolerances: half-precision gradients of an expanded input, summed over its rows
    Spec(entry="elbo_loss[bernoulli]", B=13, F=(2, 7, 3), dtype="bfloat16", seed=17152, tiles="gpu",
         options=(("beta", 1.0), ("kl", "kl="), ("latent", 4), ("reduction", "sum"), ("target", "bool"),
                  ("terms", False), ("values", "extreme"), ("x_grad", True)),
         layouts=(("logvar", "offset"), ("mu", "expanded"), ("p", "expanded"), ("x", "contiguous")),
         upstream=("random",)),
    Spec(entry="reparameterize_iw", B=17, F=(2, 1, 3), dtype="bfloat16", seed=2, K=1,
         options=(("noise", "given"), ("path", True), ("values", "extreme")),
         layouts=(("eps", "contiguous"), ("logvar", "contiguous"), ("mu", "expanded")), upstream=("ones", "random")),
]
