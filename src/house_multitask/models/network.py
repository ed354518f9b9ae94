"""The plain PyTorch multi-task network: a shared trunk and one head per task."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from house_multitask.schema import N_CATEGORIES


def make_activation(name: str) -> nn.Module:
    activations = {
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
    }
    return activations[name]()


class MultiTaskNet(nn.Module):
    """Shared fully connected layers, then a price head (1 output) and a class head (6 logits).

    Categorical inputs arrive either already inside `numeric` (scaled label codes), or as integer
    `codes` that are one-hot encoded or embedded here.

    Args:
        n_numeric: width of the float input.
        cardinalities: number of codes of each categorical column (unused for "label" input).
        categorical_input: "label", "onehot" or "embedding".
        hidden_sizes: widths of the shared layers.
        head_size: width of the hidden layer of each head.
        shared_activation: activation after each shared layer.
        head_activation: activation inside each head.
        embedding_dim: width of each embedding for "embedding" input.
        dropout: dropout probability after each shared layer.
        price_skip: add a linear map of the inputs to the price output, beside the layers (a
            wide-and-deep network).
    """

    def __init__(
        self,
        n_numeric: int,
        cardinalities: Sequence[int],
        categorical_input: str,
        hidden_sizes: Sequence[int],
        head_size: int,
        shared_activation: str,
        head_activation: str,
        embedding_dim: int = 4,
        dropout: float = 0.0,
        price_skip: bool = False,
    ) -> None:
        super().__init__()
        self.categorical_input = categorical_input
        self.cardinalities = list(cardinalities)
        if categorical_input == "embedding":
            self.embeddings = nn.ModuleList(
                nn.Embedding(cardinality, embedding_dim) for cardinality in self.cardinalities
            )
            n_inputs = n_numeric + embedding_dim * len(self.cardinalities)
        elif categorical_input == "onehot":
            self.embeddings = nn.ModuleList()
            n_inputs = n_numeric + sum(self.cardinalities)
        else:
            self.embeddings = nn.ModuleList()
            n_inputs = n_numeric

        layers: list[nn.Module] = []
        width = n_inputs
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), make_activation(shared_activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.shared = nn.Sequential(*layers)
        self.price_head = self._head(width, head_size, 1, head_activation)
        self.category_head = self._head(width, head_size, N_CATEGORIES, head_activation)
        self.price_skip = nn.Linear(n_inputs, 1) if price_skip else None
        self.apply(_xavier_init)

    @staticmethod
    def _head(width: int, head_size: int, outputs: int, activation: str) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(width, head_size), make_activation(activation), nn.Linear(head_size, outputs)
        )

    def forward(
        self, numeric: torch.Tensor, codes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the price output, shape (rows,), and the class logits, shape (rows, 6)."""
        features = [numeric]
        if self.categorical_input == "onehot":
            for column, cardinality in enumerate(self.cardinalities):
                features.append(functional.one_hot(codes[:, column], cardinality).float())
        elif self.categorical_input == "embedding":
            for column, embedding in enumerate(self.embeddings):
                features.append(embedding(codes[:, column]))
        inputs = torch.cat(features, dim=1)
        hidden = self.shared(inputs)
        price = self.price_head(hidden)
        if self.price_skip is not None:
            price = price + self.price_skip(inputs)
        return price.squeeze(-1), self.category_head(hidden)


def _xavier_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
