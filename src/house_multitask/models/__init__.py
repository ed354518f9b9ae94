"""The multi-task network, its losses and its LightningModule."""
