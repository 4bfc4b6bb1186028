"""Conditional GAN: Mirza, Osindero 2014, arXiv:1411.1784."""
