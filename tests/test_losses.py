"""Task losses and their aggregations, against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from house_multitask.models.losses import GEOMETRIC_EPS, aggregate_losses, price_loss


def scalar(value: float, grad: bool = False) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("sum", 13.0),
        ("mean", 6.5),
        ("geometric", 6.0),  # sqrt(4 * 9)
        ("weighted_geometric", math.sqrt(108.0)),  # sqrt(3 * 4 * 9)
    ],
)
def test_aggregate_losses_hand_values(kind: str, expected: float) -> None:
    total = aggregate_losses(kind, scalar(4.0), scalar(9.0), price_weight=3.0)

    assert total.item() == pytest.approx(expected, rel=1e-6)


def test_aggregate_losses_weighted_geometric_uses_price_weight() -> None:
    total = aggregate_losses("weighted_geometric", scalar(4.0), scalar(9.0), price_weight=4.0)

    assert total.item() == pytest.approx(12.0, rel=1e-6)  # sqrt(4 * 4 * 9)


def test_aggregate_losses_geometric_ignores_price_weight() -> None:
    total = aggregate_losses("geometric", scalar(4.0), scalar(9.0), price_weight=100.0)

    assert total.item() == pytest.approx(6.0, rel=1e-6)


def test_aggregate_losses_uncertainty_hand_value() -> None:
    log_variances = torch.tensor([0.0, math.log(2.0)], dtype=torch.float64)

    total = aggregate_losses("uncertainty", scalar(4.0), scalar(9.0), log_variances=log_variances)

    # exp(-0) * 4 / 2 + exp(-ln 2) * 9 + (0 + ln 2) / 2
    assert total.item() == pytest.approx(2.0 + 4.5 + math.log(2.0) / 2, rel=1e-9)


def test_aggregate_losses_uncertainty_zero_log_variance() -> None:
    log_variances = torch.zeros(2, dtype=torch.float64)

    total = aggregate_losses("uncertainty", scalar(4.0), scalar(9.0), log_variances=log_variances)

    assert total.item() == pytest.approx(11.0)


def test_aggregate_losses_uncertainty_gradient_reaches_log_variances() -> None:
    log_variances = torch.zeros(2, dtype=torch.float64, requires_grad=True)

    aggregate_losses(
        "uncertainty", scalar(4.0), scalar(9.0), log_variances=log_variances
    ).backward()

    # d/ds_p = -exp(-s_p) * price / 2 + 1/2 and d/ds_c = -exp(-s_c) * category + 1/2 at s = 0
    assert log_variances.grad.tolist() == pytest.approx([-1.5, -8.5])


def test_aggregate_losses_uncertainty_needs_log_variances() -> None:
    with pytest.raises(ValueError, match="needs the learned log-variances"):
        aggregate_losses("uncertainty", scalar(4.0), scalar(9.0))


def test_aggregate_losses_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        aggregate_losses("median", scalar(4.0), scalar(9.0))


@pytest.mark.parametrize("kind", ["geometric", "weighted_geometric"])
def test_aggregate_losses_geometric_finite_at_zero_price_loss(kind: str) -> None:
    price, category = scalar(0.0, grad=True), scalar(9.0, grad=True)

    total = aggregate_losses(kind, price, category)
    total.backward()

    assert math.isfinite(total.item())
    assert math.isfinite(price.grad.item())
    assert math.isfinite(category.grad.item())


@pytest.mark.parametrize("kind", ["geometric", "weighted_geometric"])
def test_aggregate_losses_geometric_finite_at_zero_category_loss(kind: str) -> None:
    price, category = scalar(4.0, grad=True), scalar(0.0, grad=True)

    total = aggregate_losses(kind, price, category)
    total.backward()

    assert math.isfinite(total.item())
    assert math.isfinite(category.grad.item())


def test_aggregate_losses_geometric_finite_in_float32() -> None:
    price = torch.tensor(0.0, requires_grad=True)
    category = torch.tensor(2.0, requires_grad=True)

    aggregate_losses("geometric", price, category).backward()

    assert math.isfinite(price.grad.item())


def test_aggregate_losses_geometric_both_zero_is_finite() -> None:
    price, category = scalar(0.0, grad=True), scalar(0.0, grad=True)

    total = aggregate_losses("geometric", price, category)
    total.backward()

    assert total.item() == pytest.approx(GEOMETRIC_EPS)
    assert math.isfinite(price.grad.item())


def test_aggregate_losses_geometric_gradient_hand_value() -> None:
    price, category = scalar(4.0, grad=True), scalar(9.0, grad=True)

    aggregate_losses("geometric", price, category).backward()

    # d sqrt(p c) / dp = sqrt(c / p) / 2
    assert price.grad.item() == pytest.approx(0.75, rel=1e-6)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("mse", (1.0 + 9.0) / 2),
        ("l1", (1.0 + 3.0) / 2),
        ("huber", (0.5 * 1.0 + (3.0 - 0.5)) / 2),
    ],
)
def test_price_loss_hand_values(kind: str, expected: float) -> None:
    prediction = torch.tensor([1.0, 3.0])
    target = torch.tensor([0.0, 0.0])

    assert price_loss(kind, prediction, target).item() == pytest.approx(expected)


def test_price_loss_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown price loss 'rmse'"):
        price_loss("rmse", torch.zeros(2), torch.zeros(2))
