"""Training helpers and the retrain-and-evaluate stage (searched genotypes and the plain U-Net baseline alike)."""
