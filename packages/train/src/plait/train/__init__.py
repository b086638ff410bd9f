"""Trainer, data loading, callbacks, metrics, checkpoints, data-parallel MPI."""
