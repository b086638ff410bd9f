"""Layers, activations and losses with hand-written backward passes."""
