"""Seeded generators of the two other sample datasets (declared in ``datasets/tickets.yaml`` and
``datasets/energy.yaml``; the committed files are ``pipelines/data/sample/{tickets,energy}.csv``).

- ``tickets`` (multiclass, string labels, no key column, missing values): which team resolves a customer
  support ticket (``billing``, ``technical``, ``account``, ``sales``) from its channel, product, priority and
  a few numbers. The team is drawn from a softmax of the features plus noise, so a boosted-tree model reaches
  a macro F1 of about 0.75, not 1.0. A disputed amount or an outage duration is missing when there is none;
  the priority and the message length are missing at random.
- ``energy`` (regression, a key): a household's monthly electricity use (kWh) from its floor area,
  occupants, age, insulation, heating, the month's mean outdoor temperature and its solar panels.

Everything is vectorised numpy: the same seed gives the same rows. CLI::

    python -m pipelines.data.samples --out pipelines/data/sample
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.generator import to_csv_bytes

TEAMS: tuple[str, ...] = ("billing", "technical", "account", "sales")
CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web")
PRODUCTS: tuple[str, ...] = ("mobile", "broadband", "tv")
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
INSULATION: tuple[str, ...] = ("poor", "average", "good")
HEATING: tuple[str, ...] = ("gas", "electric", "heat-pump", "oil")


def _pick(rng: np.random.Generator, choices: tuple[str, ...], p: list[float], n: int) -> np.ndarray:
    return np.asarray(choices, dtype=object)[rng.choice(len(choices), size=n, p=p)]


def generate_tickets(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` support tickets: the features, then the target ``team``; no key column."""
    rng = np.random.default_rng(seed)
    n = rows
    channel = _pick(rng, CHANNELS, [0.35, 0.3, 0.2, 0.15], n)
    product = _pick(rng, PRODUCTS, [0.45, 0.35, 0.2], n)
    priority = _pick(rng, PRIORITIES, [0.25, 0.45, 0.2, 0.1], n)
    disputed = rng.random(n) < 0.3
    outage = rng.random(n) < 0.3
    amount = np.where(disputed, np.round(rng.gamma(2.0, 30.0, n), 2), np.nan)
    outage_minutes = np.where(outage, np.round(rng.exponential(90.0, n)), np.nan)
    devices = rng.poisson(2.0, n).clip(0, 12)
    account_age = np.round(rng.exponential(700.0, n)).clip(0, 5000)
    length = np.round(rng.lognormal(5.5, 0.7, n)).clip(1, 5000)

    new_account = account_age < 90
    logits = np.column_stack(
        [
            0.2 + 3.0 * disputed + 0.006 * np.nan_to_num(amount) + 0.6 * (channel == "email"),
            0.3 + 2.8 * outage + 0.3 * devices + 1.0 * (product == "broadband") + 0.8 * (priority == "urgent"),
            -0.2 + 3.0 * new_account + 1.4 * (channel == "web") + 0.0006 * length,
            0.2 + 2.0 * (priority == "low") + 1.6 * (channel == "chat") + 1.4 * (product == "tv"),
        ]
    ) + rng.gumbel(0.0, 0.6, (n, len(TEAMS)))
    team = np.asarray(TEAMS, dtype=object)[logits.argmax(axis=1)]

    priority[rng.random(n) < 0.08] = None  # not filled in
    length = np.where(rng.random(n) < 0.03, np.nan, length)  # the message was not stored
    return pd.DataFrame(
        {
            "channel": channel,
            "product": product,
            "priority": priority,
            "amount_disputed_eur": amount,
            "outage_minutes": outage_minutes,
            "devices": devices.astype(np.int64),
            "account_age_days": account_age.astype(np.int64),
            "message_length": length,
            "team": team,
        }
    )


def generate_energy(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` household-months: ``meter_id``, the features, then the target ``monthly_kwh``."""
    rng = np.random.default_rng(seed)
    n = rows
    meter = pd.Series([f"M{seed}-{i:07d}" for i in range(n)], dtype=object)
    area = np.round(rng.lognormal(4.6, 0.4, n).clip(20, 600), 1)
    occupants = rng.integers(1, 7, n)
    year = rng.integers(1900, 2025, n)
    insulation = _pick(rng, INSULATION, [0.3, 0.45, 0.25], n)
    heating = _pick(rng, HEATING, [0.45, 0.25, 0.2, 0.1], n)
    temperature = np.round(rng.normal(10.0, 8.0, n).clip(-15, 32), 1)
    solar = np.where(rng.random(n) < 0.25, np.round(rng.uniform(2.0, 12.0, n), 1), 0.0)

    degree = np.maximum(18.0 - temperature, 0.0)
    loss = np.select([insulation == "poor", insulation == "good"], [1.5, 0.6], default=1.0)
    electric_share = np.select([heating == "electric", heating == "heat-pump"], [1.0, 0.35], default=0.05)
    kwh = (
        120.0
        + 55.0 * occupants
        + 0.9 * area
        + 0.12 * area * degree * loss * electric_share
        + 1.5 * np.maximum(temperature - 22.0, 0.0) * area / 10.0  # cooling
        - 9.0 * solar * np.clip(temperature + 5.0, 0.0, 35.0) / 10.0
        + 0.4 * (2025 - year)
        + rng.normal(0.0, 60.0, n)
    )
    solar = np.where(rng.random(n) < 0.05, np.nan, solar)  # the installer's record is missing
    return pd.DataFrame(
        {
            "meter_id": meter,
            "floor_area_m2": area,
            "occupants": occupants.astype(np.int64),
            "year_built": year.astype(np.int64),
            "insulation": insulation,
            "heating": heating,
            "outdoor_temp_c": temperature,
            "solar_kw": solar,
            "monthly_kwh": np.round(np.maximum(kwh, 20.0), 1),
        }
    )


SAMPLES: dict[str, tuple[Callable[[int, int], pd.DataFrame], int, int]] = {
    "tickets": (generate_tickets, 3_000, 11),
    "energy": (generate_energy, 2_000, 13),
}
"""name -> (generator, rows, seed) of the committed sample files."""


def sample_csv(name: str) -> bytes:
    """The bytes of the committed sample ``pipelines/data/sample/<name>.csv``."""
    generate, rows, seed = SAMPLES[name]
    return to_csv_bytes(generate(rows, seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.data.samples", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder of the <name>.csv files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        (args.out / f"{name}.csv").write_bytes(sample_csv(name))
        print(f"wrote {args.out / f'{name}.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
