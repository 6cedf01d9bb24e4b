"""The price table serving cost is computed with: a few dated on-demand prices shipped in the repo, plus the
user's own (``--optbench-price NAME=USD_PER_HOUR``).

Prices move; each entry says where it was read and when, and the report prints both beside every figure. A cost is
what the *measured* throughput would cost at that hourly price: the throughput was measured on the machine that
ran the suite, not on the instance named, so the table prices this machine's work at those rates.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable

from harness.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Price:
    """One hourly on-demand price: a short name (used in figure names), the instance, region, source and date."""

    name: str
    usd_per_hour: float
    instance: str = ""
    region: str = ""
    source: str = ""
    date: str = ""

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


# Read 2026-12-01. The GitHub rate is the published per-minute rate x 60; the cloud prices are Linux on-demand list
# prices without sustained-use or savings-plan discounts, 2 vCPUs each: the size of the runner that measured them.
SHIPPED: tuple[Price, ...] = (
    Price("gh_runner_2core", 0.008 * 60, "GitHub-hosted runner, Linux 2-core (x64)", "hosted",
          "https://docs.github.com/en/billing/reference/actions-runner-pricing ($0.008 per minute)", "2026-12-01"),
    Price("aws_c7i_large", 0.08925, "AWS EC2 c7i.large (2 vCPU, 4 GiB)", "us-east-1",
          "https://aws.amazon.com/ec2/pricing/on-demand/", "2026-12-01"),
    Price("gcp_n2_standard_2", 0.097118, "Google Cloud n2-standard-2 (2 vCPU, 8 GiB)", "us-central1",
          "https://cloud.google.com/compute/vm-instance-pricing", "2026-12-01"),
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def parse_price(text: str) -> Price:
    """``NAME=USD_PER_HOUR`` (``my_box=0.12``) as a Price; anything else is a ConfigError that says what was wrong
    and what was expected."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep:
        raise ConfigError(f"--optbench-price {text!r}: expected NAME=USD_PER_HOUR (e.g. my_box=0.12), no '=' found")
    if not _NAME.match(name):
        raise ConfigError(f"--optbench-price {text!r}: NAME must be lower-case letters, digits and '_' "
                          f"(e.g. my_box=0.12), got {name!r}")
    try:
        usd = float(raw)
    except ValueError:
        raise ConfigError(f"--optbench-price {text!r}: USD_PER_HOUR must be a number of dollars per hour "
                          f"(e.g. {name}=0.12), got {raw.strip()!r}") from None
    if not math.isfinite(usd) or usd <= 0:
        raise ConfigError(f"--optbench-price {text!r}: USD_PER_HOUR must be a finite number > 0, got {raw.strip()!r}")
    return Price(name, usd, instance="given with --optbench-price", source="command line")


def price_table(extra: Iterable[Price] = ()) -> tuple[Price, ...]:
    """The shipped prices with the user's added; a user's price under a shipped name replaces it."""
    table = {p.name: p for p in SHIPPED}
    for p in extra:
        table[p.name] = p
    return tuple(table.values())


def usd_per_million(usd_per_hour: float, items_per_s: float) -> float:
    """Dollars per million inferences at ``items_per_s``: price/hour x 1e6 / (3600 x throughput)."""
    if not items_per_s > 0:
        raise ConfigError(f"throughput must be > 0 items/s to price it, got {items_per_s!r}")
    return usd_per_hour * 1e6 / (3600.0 * items_per_s)


def usd_for_seconds(usd_per_hour: float, seconds: float) -> float:
    """What ``seconds`` of the machine cost at ``usd_per_hour``."""
    return usd_per_hour * seconds / 3600.0
