"""Fitted preprocessing and the tensors the network reads."""
