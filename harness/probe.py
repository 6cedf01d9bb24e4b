"""A fixed speed probe: a small matrix product and a small convolution, timed interleaved with each case.

Dividing a case's latency by the probe's makes absolute latency comparable across runs of one machine class even
when the machine as a whole runs faster or slower (another chip of the class, a busy neighbour): both move alike.
The probe never changes; changing it invalidates every ``latency.normalized`` figure in the baselines.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PROBE_VERSION = 1


def make_probe(seed: int = 0) -> Callable[[], object]:
    """A zero-argument call of fixed work (~0.1 ms on one thread of a 2020s x86 core), deterministic inputs."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(96, 96, generator=gen)
    b = torch.randn(96, 96, generator=gen)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen))
    conv.eval()
    image = torch.randn(1, 8, 16, 16, generator=gen)

    def probe() -> object:
        with torch.inference_mode():
            return float(torch.mm(a, b)[0, 0]) + float(conv(image)[0, 0, 0, 0])

    return probe
