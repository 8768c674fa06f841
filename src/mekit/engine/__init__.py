"""Training engine: seeding, the training loop with inner-validation early stopping,
augmentation, checkpoints and resume (no argument parsing here)."""
