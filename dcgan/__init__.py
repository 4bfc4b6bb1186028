"""DCGAN: Radford, Metz, Chintala 2015, arXiv:1511.06434."""
