"""Reading and writing images and raw files."""
