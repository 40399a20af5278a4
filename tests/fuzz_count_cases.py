"""The fuzzing's entries for scVI's softmax form of the count likelihoods
(``softmax_negative_binomial_log_likelihood``: the mean ``exp(log_library) * softmax(logits)``
fused with the likelihood), one per count record of the registry: Poisson (no log theta), the
negative binomial, and the zero-inflated one (with its dropout logits). See ``fuzz_cases``."""

import likelihood_cases as cases

from fastvae import likelihoods

from fuzz_base import CPU, Entry, normal, sprinkle

LOGIT_EXTREMES = (30.0, -30.0, 0.0, 1e-4)
LIBRARY_SHAPES = ("(B,)", "(B, 1)")


def softmax_decoder(spec, out):
    """A count record's softmax form (option ``decoder``): p becomes logits (B, G), and the
    library log_library (B,) joins the keyword arguments."""
    if spec.option("decoder") != "softmax":
        return out
    logits = normal(spec.shape, spec.torch_dtype, 2.0)
    if spec.option("values") == "extreme":
        logits = sprinkle(logits, (30.0, -30.0, 0.0))
    n = len(out["names"][0])
    library = 3.0 + normal((spec.B,), spec.torch_dtype)
    return dict(out, p=(logits, True), **{f"extra{n}": (library, True)},
                names=(out["names"][0] + ("log_library",), False))


def decoders(rec, F):
    """The decoder forms of ``elbo_loss`` for the record: the mean, and for a count record of
    (B, G) rows also scVI's softmax with a library."""
    return ("mean", "softmax") if rec.counts and len(F) == 1 and "log_library" in dict(rec.arguments) else ("mean",)


def softmax_entry(rec):
    """The record's softmax form: (ll,)."""
    def tensors(spec):
        dt, shape, extreme = spec.torch_dtype, spec.shape, spec.option("values") == "extreme"
        logits = normal(shape, dt, 2.0)
        if extreme:
            logits = sprinkle(logits, LOGIT_EXTREMES)
        library = 3.0 + normal((spec.B, 1) if spec.option("library") == "(B, 1)" else (spec.B,), dt)
        args = cases.extra(rec, shape, dt, CPU, spec.option("form") or "shared", extreme)
        theta, q = args.get("log_theta"), args.get("zero_inflation_logits")
        return {"logits": (logits, True), "x": (cases.targets(rec, shape, spec.option("target"), CPU, dt), False),
                "log_library": (library, True),
                "log_theta": (None if theta is None else theta.detach(), True),
                "q": (None if q is None else q.detach(), True)}

    def call(lib, spec, t):
        return (lib.softmax_negative_binomial_log_likelihood(t["logits"], t["x"], t["log_theta"], t["log_library"],
                                                             zero_inflation_logits=t["q"]),)

    def options(B, F, dtype):
        out = {"target": cases.target_kinds(rec), "values": ("ordinary", "extreme"), "library": LIBRARY_SHAPES}
        forms = cases.extra_forms(rec, (B, *F))
        return dict(out, form=forms) if forms else out
    return Entry(f"softmax_counts[{rec.name}]", tensors, call, lambda spec: 1,
                 (likelihoods.SOFTMAX_FUNCTION,), options, flat=True)


def entries():
    return [softmax_entry(rec) for rec in likelihoods.records() if rec.counts]
