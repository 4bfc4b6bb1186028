"""A simple fully-connected GAN (Goodfellow et al. 2014), the collection's first example."""
