"""Multi-task network for Ames house prices: SalePrice regression and a six-class HouseCategory."""

__version__ = "0.1.0"
