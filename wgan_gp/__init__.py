"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville 2017, arXiv:1704.00028."""
