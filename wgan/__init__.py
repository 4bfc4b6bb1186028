"""WGAN: Arjovsky, Chintala, Bottou 2017, arXiv:1701.07875."""
