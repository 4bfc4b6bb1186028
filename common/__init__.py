"""Thin shared plumbing for the GAN paper folders.

device      --device / --precision / --channels-last / --compile
checkpoint  atomic, weights_only checkpoints and --resume
penalty     WGAN-GP gradient penalty (AMP-safe)
data        embedded digits and photos, torchvision datasets, image folders, resumable loader
distributed torchrun / DDP helpers
ema         exponential moving average of weights
features    the offline feature extractor (a deterministic digit classifier, cached)
swd         sliced Wasserstein distance on Laplacian-pyramid patches (ProGAN App. D)
run         run directory, TensorBoard, sample grids, progress, non-finite check
cli         the shared command-line flags
errors      one-line errors for bad input
"""
