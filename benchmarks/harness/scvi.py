"""The eager baseline of the count cases: scvi-tools' own formulation, as its users run it.

``log_zinb_positive`` and ``log_nb_positive`` are the formulas of scvi-tools
(``scvi/distributions/_negative_binomial.py``, with their ``eps = 1e-8``), and the decoder's
mean is formed as scVI forms it (``px_scale = softmax(logits)``, ``px_rate = exp(library) *
px_scale``). ``loss(model, x)`` is a ``fastvae.models.CountVAE``'s negative ELBO computed that
way, for the training-step case: the same model and weights, the loss scvi-tools would compute.
"""

import torch
import torch.nn.functional as F

EPS = 1e-8  # scvi-tools' default


def log_nb_positive(x, mu, theta, eps=EPS):
    log_theta_mu_eps = torch.log(theta + mu + eps)
    return (theta * (torch.log(theta + eps) - log_theta_mu_eps) + x * (torch.log(mu + eps) - log_theta_mu_eps)
            + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1))


def log_zinb_positive(x, mu, theta, pi, eps=EPS):
    softplus_pi = F.softplus(-pi)
    log_theta_eps = torch.log(theta + eps)
    log_theta_mu_eps = torch.log(theta + mu + eps)
    pi_theta_log = -pi + theta * (log_theta_eps - log_theta_mu_eps)
    case_zero = F.softplus(pi_theta_log) - softplus_pi
    mul_case_zero = torch.mul((x < eps).type(torch.float32), case_zero)
    case_non_zero = (-softplus_pi + pi_theta_log + x * (torch.log(mu + eps) - log_theta_mu_eps)
                     + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1))
    mul_case_non_zero = torch.mul((x > eps).type(torch.float32), case_non_zero)
    return mul_case_zero + mul_case_non_zero


def softmax_count_ll(logits, x, log_theta, log_library, zero_inflation_logits=None):
    """Per cell (B,): scVI's decoder mean and scvi-tools' (ZI)NB log-probability, summed over genes."""
    px_rate = torch.exp(log_library.reshape(-1, 1)) * torch.softmax(logits, dim=-1)
    theta = torch.exp(log_theta)
    x = x.to(px_rate.dtype)
    if zero_inflation_logits is None:
        return log_nb_positive(x, px_rate, theta).sum(-1)
    return log_zinb_positive(x, px_rate, theta, zero_inflation_logits).sum(-1)


def loss(model, x, batch=None, eps=None):
    """The negative ELBO (mean over cells) of ``model``, a ``fastvae.models.CountVAE`` with
    ``fused=False``, with scvi-tools' likelihood in place of fastvae's."""
    out = model(x, batch, eps=eps)
    ll = softmax_count_ll(out.logits, x, model.log_theta, out.log_library, out.zero_inflation)
    return (model.beta * out.kl - ll).mean()
