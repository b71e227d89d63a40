"""Regenerate the shipped example dataset (synthetic customers, so it can be public).

    python -m model.data.generate > model/data/churn.csv

Churn follows a known logistic ground truth plus noise, so a correct training run
lands on a predictable AUC; replace the CSV with your own data and delete this file.
"""

from __future__ import annotations

import csv
import math
import random
import sys

ROWS = 800
SEED = 20261201


def main() -> int:
    rng = random.Random(SEED)  # noqa: S311 - reproducible data, not secrets
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(
        [
            "tenure_months",
            "monthly_charges",
            "support_tickets_90d",
            "late_payments_12m",
            "contract_months_remaining",
            "churned",
        ]
    )
    for _ in range(ROWS):
        tenure = rng.randint(0, 72)
        charges = round(rng.uniform(15, 120), 2)
        tickets = min(int(rng.expovariate(0.6)), 12)
        late = min(int(rng.expovariate(0.9)), 12)
        remaining = rng.choice([0, 0, 0, 1, 3, 6, 12, 24])
        z = -0.9 - 0.045 * tenure + 0.018 * charges + 0.42 * tickets + 0.55 * late
        z += -0.09 * remaining + rng.gauss(0, 0.8)
        churned = int(rng.random() < 1 / (1 + math.exp(-z)))
        out.writerow([tenure, charges, tickets, late, remaining, churned])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
