"""Seeds, generators and Bernoulli binarization shared by ``Dataset`` and ``DeviceLoader``."""

import torch


def seed_for(*words):
    """A 63-bit seed that is a pure function of the integer ``words`` (splitmix64 mixing)."""
    mask = (1 << 64) - 1
    h = 0x9E3779B97F4A7C15
    for w in words:
        h = (h ^ (int(w) & mask)) * 0xBF58476D1CE4E5B9 & mask
        h ^= h >> 31
        h = (h + 0x9E3779B97F4A7C15) * 0x94D049BB133111EB & mask
        h ^= h >> 29
    return h >> 1


def binarize(grey, generator):
    """uint8 0/1 with P(1) = grey / 255 exactly: r uniform on {0, ..., 254}, 1 where r < grey."""
    r = torch.randint(0, 255, grey.shape, generator=generator, device=grey.device, dtype=torch.uint8)
    return (r < grey).to(torch.uint8)


def seeded_generator(device, seed):
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g
