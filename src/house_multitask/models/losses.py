"""Per-task losses and the ways the study combines them into one training loss."""

from __future__ import annotations

import torch
from torch.nn import functional

# Added inside the geometric mean so that its value and gradient stay finite when a task loss
# reaches zero: d/dp sqrt((p + eps)(c + eps)) is bounded by sqrt(c / eps) / 2.
GEOMETRIC_EPS = 1e-8


def price_loss(kind: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "mse":
        return functional.mse_loss(prediction, target)
    if kind == "l1":
        return functional.l1_loss(prediction, target)
    if kind == "huber":
        return functional.huber_loss(prediction, target)
    raise ValueError(f"unknown price loss {kind!r}")


def aggregate_losses(
    kind: str,
    price: torch.Tensor,
    category: torch.Tensor,
    price_weight: float = 3.0,
    log_variances: torch.Tensor | None = None,
) -> torch.Tensor:
    """Combine the price loss and the cross-entropy into the loss that is minimised.

    Args:
        kind: "sum"; "mean" (arithmetic); "geometric", sqrt(price * category);
            "weighted_geometric", sqrt(price_weight * price * category); or "uncertainty",
            homoscedastic uncertainty weighting with learned log-variances (Kendall, Gal and
            Cipolla, CVPR 2018): exp(-s_p) * price / 2 + exp(-s_c) * category + (s_p + s_c) / 2.
        price: the price loss, a scalar.
        category: the cross-entropy, a scalar.
        price_weight: the factor on the price loss for "weighted_geometric".
        log_variances: the two learned log-variances (price, category) for "uncertainty".
    """
    if kind == "sum":
        return price + category
    if kind == "mean":
        return (price + category) / 2
    if kind in ("geometric", "weighted_geometric"):
        weight = price_weight if kind == "weighted_geometric" else 1.0
        logs = torch.log(weight * price + GEOMETRIC_EPS) + torch.log(category + GEOMETRIC_EPS)
        return torch.exp(logs / 2)
    if kind == "uncertainty":
        if log_variances is None:
            raise ValueError("uncertainty weighting needs the learned log-variances")
        s_price, s_category = log_variances[0], log_variances[1]
        weighted = 0.5 * torch.exp(-s_price) * price + torch.exp(-s_category) * category
        return weighted + 0.5 * (s_price + s_category)
    raise ValueError(f"unknown aggregation {kind!r}")
