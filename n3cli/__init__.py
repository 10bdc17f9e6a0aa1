"""n3: Neural Nearest Neighbors Networks (N³Net) for photo denoising and more."""
__version__ = "0.1.0"
