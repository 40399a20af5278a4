"""``--arch hierarchical``: the flags of the top-down hierarchical VAEs (``fastvae.hierarchical``)
and the settings they do not go with; ``fastvae.architectures`` builds the model
(``hierarchical_nets.resolve_config`` and ``build_from_config``)."""

from ..hierarchical_nets import DEFAULT_HIDDEN, DEFAULT_LATENTS, NETS

__all__ = ["DEFAULT_HIDDEN", "add_arguments", "check_settings"]


def _widths(text):
    from .args import _widths as widths  # the one parser of comma-separated sizes

    return widths(text)


def add_arguments(m):
    """The hierarchical flags, in the model group ``m``."""
    m.add_argument("--hierarchical-net", choices=NETS, default="mlp",
                   help="hierarchical: mlp (flat layers; --hidden per level) or conv (images; --conv-channels for "
                        "the stem, every level at the stem's resolution)")
    m.add_argument("--latent-dims", type=_widths,
                   help="hierarchical: each level's latent size (mlp) or channels (conv), top first; their number "
                        f"is the number of levels (default {','.join(map(str, DEFAULT_LATENTS['mlp']))} for mlp, "
                        f"{','.join(map(str, DEFAULT_LATENTS['conv']))} for conv)")
    m.add_argument("--free-bits", type=float, default=0.0,
                   help="hierarchical: floor, in nats, on each level's batch-mean KL in the optimised loss (0: off)")


def check_settings(args):
    """Flags of the hierarchy without ``--arch hierarchical``, or settings it does not take: a ValueError."""
    if args.arch != "hierarchical":
        for flag, value, default in (("--latent-dims", args.latent_dims, None), ("--free-bits", args.free_bits, 0.0),
                                     ("--hierarchical-net", args.hierarchical_net, "mlp")):
            if value != default:
                raise ValueError(f"{flag} is for --arch hierarchical")
        return
    if not args.free_bits >= 0 or args.free_bits == float("inf"):
        raise ValueError(f"--free-bits must be a finite number >= 0, got {args.free_bits}")
    if args.objective == "dreg":
        raise ValueError("--arch hierarchical trains with --objective elbo or iwae: DReG's squared weights would "
                         "also reach the learned priors, which need the IWAE ones")
    if args.free_bits and args.objective != "elbo":
        raise ValueError("--free-bits floors the ELBO's KL terms; --objective iwae has none")
