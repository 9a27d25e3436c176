"""Hand-designed segmentation networks used as references for searched ones."""
