"""LAPGAN: Deep Generative Image Models using a Laplacian Pyramid of Adversarial Networks (Denton et al. 2015)."""
