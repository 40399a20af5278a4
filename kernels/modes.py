"""The kernels' compile-time modes, by name: every ``tl.constexpr`` argument that selects a
branch rather than a size. Plain Python integers (no Triton import), so that the layers above
can name a mode without importing Triton; the kernels compare against these names
(``if KIND == modes.GAUSSIAN``), never against bare numbers.

Which likelihood a record of ``fastvae.likelihoods`` runs is its ``code``, one of the ``KIND``
values below; adding a likelihood to the elementwise kernel adds one name here.
"""

# KIND of ``likelihood.py``: which log-density the elementwise pass computes
BERNOULLI = 0
CONTINUOUS_BERNOULLI = 1
GAUSSIAN = 2
POISSON = 3
NEGATIVE_BINOMIAL = 4  # with HAS_Q: zero-inflated

# GS_MODE of ``likelihood.py``: how the gradient of a tensor logscale is formed
GS_NONE = 0         # no logscale gradient
GS_ELEMENTS = 1     # one per element (a logscale of the parameters' own shape)
GS_PARTIALS = 2     # shared by the rows, varying within a row: per-program partial sums over rows
GS_ROW_SUMS = 3     # constant within each row (one shared value included): per-row sums of d/ds

# REDUCE of ``likelihood.py`` (with the ELBO's rows): what one program holding every row writes
REDUCE_NONE = 0     # the (B,) rows
REDUCE_SUM = 1      # their sum
REDUCE_MEAN = 2     # their mean

REDUCTIONS = {"none": REDUCE_NONE, "sum": REDUCE_SUM, "mean": REDUCE_MEAN}  # reduction= -> REDUCE
