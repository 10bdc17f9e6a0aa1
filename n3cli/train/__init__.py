"""Training: config, data, loop."""
