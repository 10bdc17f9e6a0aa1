"""Correspondence classification (the paper's third task): geometry, data, inference, evaluation."""
