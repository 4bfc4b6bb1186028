"""DCGAN generator and discriminator (Radford, Metz, Chintala 2015, arXiv:1511.06434).

Architecture guidelines of Sec. 3, as the paper lists them:
  * no pooling: strided convolutions (D) and fractionally-strided convolutions (G);
  * BatchNorm in both networks, except G's output layer and D's input layer;
  * no fully-connected hidden layers: z is projected and reshaped to 4x4 (G),
    D's last convolution is flattened into a single output;
  * ReLU in G with Tanh at the output; LeakyReLU (slope 0.2) in D.
Sec. 4: weights from N(0, 0.02); here BatchNorm scale from N(1, 0.02) and biases 0,
as in the authors' code.

Generator for 64x64 (Fig. 1, ngf = 128):

    layer                               output        params (nz=100, C=3)
    z ~ U[-1, 1]^100                    100x1x1
    project: ConvT 4x4 /1 (no bias)     1024x4x4      1,638,400 + BN 2,048
    ConvT 4x4 /2 pad 1 (no bias)        512x8x8       8,388,608 + BN 1,024
    ConvT 4x4 /2 pad 1 (no bias)        256x16x16     2,097,152 + BN   512
    ConvT 4x4 /2 pad 1 (no bias)        128x32x32       524,288 + BN   256
    ConvT 4x4 /2 pad 1 + Tanh           Cx64x64           6,144 + bias   3
                                                      total 12,658,435

A 4x4 transposed convolution with stride 1 on a 1x1 input is exactly the
paper's "project and reshape" (a matrix multiply to 4*4*1024 values); its bias
is dropped because BatchNorm follows. Stride-2 layers use padding 1 so each
doubles the size: (in - 1) * 2 - 2 * 1 + 4 = 2 * in.

The discriminator mirrors it (ndf = 128): Conv 4x4 /2 pad 1 from C to 128 at
32x32 (LeakyReLU, no BatchNorm), then 256, 512, 1024 down to 4x4 (BatchNorm +
LeakyReLU), then a 4x4 convolution to one logit (the flattened single output).
It returns logits; the sigmoid lives in the loss (BCE with logits), which is
numerically safe under autocast.

`image_size` 32 removes the widest block of each network (4x4x512 for G), other
powers of two add or remove blocks the same way.

Improved Techniques toolbox (Salimans et al. 2016, arXiv:1606.03498, Sec. 3), all
off by default; the layers that change the networks live here, at the end:
  * MinibatchDiscrimination + MinibatchDiscriminator (Sec. 3.2),
  * VirtualBatchNorm + VBNGenerator (Sec. 3.5),
  * Discriminator.features, the last hidden layer that feature matching (Sec. 3.1)
    and minibatch discrimination read.
The losses (feature matching, one-sided label smoothing) are in train.py, the
historical average (Sec. 3.3) in utils.py.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed):
# small convolutions at batch 128 gain from NHWC on every CPU measured. CUDA is not measured yet (no
# GPU lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": True, "cpu-bf16": True, "cuda": True}


def num_blocks(image_size: int) -> int:
    """Number of stride-2 (de)convolutions between 4x4 and the image: log2(size / 4)."""
    n = int(round(math.log2(image_size / 4)))
    if image_size < 8 or 4 * 2**n != image_size:
        raise ValueError(f"DCGAN image size must be a power of two >= 8, got {image_size}")
    return n


class Generator(nn.Module):
    """z (nz) -> image (channels x image_size x image_size) in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 128, channels: int = 3, image_size: int = 64,
                 norm_layer: type[nn.Module] = nn.BatchNorm2d):
        super().__init__()
        self.nz, self.ngf, self.channels, self.image_size = nz, ngf, channels, image_size
        # norm_layer: BatchNorm2d (the paper), or VirtualBatchNorm for VBNGenerator (Salimans et al. Sec. 3.5)
        n = num_blocks(image_size)
        width = ngf * 2 ** (n - 1)  # 1024 at 4x4 for 64x64 with ngf 128
        layers: list[nn.Module] = [
            # "project and reshape": z -> width x 4 x 4
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            norm_layer(width),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):  # fractionally-strided convolutions, halving the width
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       norm_layer(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]  # no BatchNorm at the output
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class Discriminator(nn.Module):
    """image -> one real/fake logit per image."""

    def __init__(self, ndf: int = 128, channels: int = 3, image_size: int = 64):
        super().__init__()
        self.ndf, self.channels, self.image_size = ndf, channels, image_size
        n = num_blocks(image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1),  # input layer: no BatchNorm (Sec. 3)
            nn.LeakyReLU(0.2, True),
        ]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]  # flatten 4x4xwidth into a single output (logit)
        self.main = nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """D's last hidden layer: width x 4 x 4 after BatchNorm + LeakyReLU, the input of
        the output layer. Feature matching (Salimans et al. 2016, Sec. 3.1) matches its
        mean; minibatch discrimination (Sec. 3.2) reads it as f(x_i)."""
        for layer in self.main[:-1]:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def init_weights(module: nn.Module) -> None:
    """Sec. 4: conv (and linear) weights ~ N(0, 0.02); BatchNorm (and virtual BatchNorm)
    scale ~ N(1, 0.02); biases 0. MinibatchDiscrimination initialises its own tensor T."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, VirtualBatchNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ===================================================================================
# Improved Techniques for Training GANs (Salimans et al. 2016, arXiv:1606.03498, Sec. 3)
# ===================================================================================
class MinibatchDiscrimination(nn.Module):
    """Sec. 3.2: features that tell D how close each example is to the others in its minibatch.

    f(x_i) in R^A is multiplied by a tensor T in R^{A x B x C}, giving M_i in R^{B x C};
    for each of the B kernels, c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_L1), and
    o(x_i)_b = sum_j c_b(x_i, x_j) + bias_b. Returns o(X) in R^{n x B}.

    `include_self`: the paper's formula sums over every j (its text says "to all other
    samples"), so j = i would add exp(0) = 1 to every o(x_i)_b, a constant that carries no
    information; the authors' code masks it out (adds 1e6 to the diagonal distances), and so
    do we by default. With it excluded, a minibatch of identical samples (a collapsed G)
    gives o - bias = n - 1 in every kernel.

    Scale (not in the paper; the authors' code, see README): T starts as N(0, 1/A), then
    `initialise_from` rescales each kernel on a batch of real features so that the mean L1
    distance from an example to its nearest neighbour is 2, and sets `bias` so that o has
    mean 0 on that batch. Without it o reaches tens (up to n - 1) while f is of order 1, and
    D's output learns from o far faster than from f: on the digits D then won at once and G
    never recovered (README).
    """

    def __init__(self, in_features: int, kernels: int = 100, kernel_dims: int = 5, include_self: bool = False):
        super().__init__()
        self.in_features, self.kernels, self.kernel_dims = in_features, kernels, kernel_dims
        self.include_self = include_self
        self.T = nn.Parameter(torch.randn(in_features, kernels, kernel_dims) / math.sqrt(in_features))
        self.bias = nn.Parameter(torch.zeros(kernels))  # per kernel, added to o (the authors' code)

    def distances(self, f: torch.Tensor) -> torch.Tensor:
        """[b, i, j] = ||M_{i,b} - M_{j,b}||_L1, with M_i = f(x_i) T."""
        n = f.shape[0]
        M = (f @ self.T.view(self.in_features, -1)).view(n, self.kernels, self.kernel_dims)
        rows = M.transpose(0, 1)  # (B, n, C): row b of every M_i
        # cdist takes n*n*B memory instead of the n*n*B*C of broadcasting, and is faster on the
        # CPU: 1.6-1.8x with its backward, 2-6x without (benchmarks/minibatch_distances.py)
        return torch.cdist(rows, rows, p=1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        n = f.shape[0]
        c = torch.exp(-self.distances(f))  # c_b(x_i, x_j)
        if not self.include_self:
            c = c * (1.0 - torch.eye(n, device=f.device, dtype=c.dtype))
        return c.sum(dim=2).t() + self.bias  # o(x_i)_b = sum_j c_b(x_i, x_j) + bias_b, as (n, B)

    @torch.no_grad()
    def initialise_from(self, f: torch.Tensor, nearest: float = 2.0) -> None:
        """The authors' data-dependent initialisation, on real features f (n >= 2 examples):
        T[:, b, :] *= nearest / (mean_i min_{j != i} ||M_{i,b} - M_{j,b}||_L1), then
        bias_b = -mean_i (o(x_i)_b without bias)."""
        n = f.shape[0]
        if n < 2:
            raise ValueError("minibatch discrimination's initialisation needs at least two examples")
        l1 = self.distances(f.float())
        l1.diagonal(dim1=1, dim2=2).fill_(float("inf"))  # an example is not its own neighbour
        mean_nearest = l1.min(dim=2).values.mean(dim=1).clamp_min(1e-6)  # (B,)
        self.T.mul_((nearest / mean_nearest).view(1, -1, 1))
        self.bias.zero_()
        self.bias.copy_(-self(f.float()).mean(dim=0))

    def extra_repr(self) -> str:
        return (f"A={self.in_features}, B={self.kernels}, C={self.kernel_dims}, "
                f"include_self={self.include_self}")


class MinibatchDiscriminator(Discriminator):
    """The DCGAN discriminator with a minibatch discrimination layer (Sec. 3.2) before its output.

    f(x_i) is D's flattened last hidden layer (A = width * 4 * 4); o(x_i) is concatenated
    to it and [f, o] goes into the output layer. That output layer is written as two
    blocks of one linear map: DCGAN's own 4x4 output convolution (the weights that read f,
    bias included) plus `minibatch_out` (the weights that read o, no bias), so
    logit = w_f . f + w_o . o + b. Call D on real and on fake minibatches separately
    (train_step does): o compares an example only with the others of its own minibatch.
    """

    def __init__(self, ndf: int = 128, channels: int = 3, image_size: int = 64, kernels: int = 100,
                 kernel_dims: int = 5):
        super().__init__(ndf, channels, image_size)
        width = ndf * 2 ** (num_blocks(image_size) - 1)
        self.minibatch = MinibatchDiscrimination(width * 4 * 4, kernels, kernel_dims)
        self.minibatch_out = nn.Linear(kernels, 1, bias=False)

    @torch.no_grad()
    def initialise_minibatch_layer(self, real: torch.Tensor) -> None:
        """Set T's scale and o's bias from a batch of real images (`MinibatchDiscrimination.
        initialise_from`; the authors' code does this on real data before training). f is
        computed as the D step computes it, BatchNorm on the batch's own statistics, and
        the BatchNorm running statistics are left as they were."""
        saved = [b.clone() for b in self.buffers()]
        was_training = self.training
        self.train()
        f = self.features(real).flatten(1)
        self.train(was_training)
        for buffer, value in zip(self.buffers(), saved):
            buffer.copy_(value)
        self.minibatch.initialise_from(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # last hidden layer, width x 4 x 4
        o = self.minibatch(h.flatten(1))  # f(x_i) -> o(x_i), (n, B)
        return self.main[-1](h).view(-1) + self.minibatch_out(o).view(-1)  # output layer on [f(x_i), o(x_i)]


class VirtualBatchNorm(nn.Module):
    """Sec. 3.5: batch normalisation whose statistics come from a fixed reference batch and
    the example itself, so an example's output does not depend on the rest of its minibatch.

    Called on one tensor whose first `n_ref` rows are the reference batch (VBNGenerator
    runs the reference batch through the same layers, one forward pass on both):
      * the reference rows are normalised with the reference batch's own statistics;
      * each other example x is normalised, per channel, with
            mu  = 1/(N+1) * mean_hw(x)   + N/(N+1) * mean_(ref,hw)(x_ref)
            msq = 1/(N+1) * mean_hw(x^2) + N/(N+1) * mean_(ref,hw)(x_ref^2),   var = msq - mu^2,
        N = n_ref: the weighting of the authors' code (new_coeff = 1/(batch_size + 1)), which
        is exactly the (biased) mean and variance of the batch {reference examples, x}.
    Then y = gamma * (x - mean) / sqrt(var + eps) + beta, as BatchNorm. Gradients flow
    through the reference statistics (they depend on G's weights, as in the authors' code).
    No running statistics: training and eval mode compute the same thing. Statistics in fp32.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta

    def forward(self, x: torch.Tensor, n_ref: int) -> torch.Tensor:
        if not 1 <= n_ref <= x.shape[0]:
            raise ValueError(f"VirtualBatchNorm needs 1..{x.shape[0]} reference rows, got {n_ref}")
        xf = x.float()
        ref, live = xf[:n_ref], xf[n_ref:]
        ref_mean = ref.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
        ref_sq = ref.square().mean(dim=(0, 2, 3), keepdim=True)
        w = 1.0 / (n_ref + 1)  # the example's own weight
        live_mean = w * live.mean(dim=(2, 3), keepdim=True) + (1.0 - w) * ref_mean  # (n, C, 1, 1)
        live_sq = w * live.square().mean(dim=(2, 3), keepdim=True) + (1.0 - w) * ref_sq
        mean = torch.cat([ref_mean.expand(n_ref, -1, -1, -1), live_mean])
        var = (torch.cat([ref_sq.expand(n_ref, -1, -1, -1), live_sq]) - mean.square()).clamp_min(0.0)
        y = (xf - mean) * torch.rsqrt(var + self.eps)
        return (y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class VBNGenerator(Generator):
    """The DCGAN generator with every BatchNorm replaced by VirtualBatchNorm (Sec. 3.5; the
    paper uses VBN in the generator only, since it costs a forward pass on the reference batch).

    The reference batch is a fixed batch of latents `z_ref` (ref_size x nz), a buffer: drawn
    once when training starts (train.py), saved in every checkpoint, restored by generate.py
    and evaluate.py. Each forward runs [z_ref; z] through the network and returns the rows of
    z only. Same parameters as Generator (gamma, beta per channel), no running statistics.
    """

    def __init__(self, nz: int = 100, ngf: int = 128, channels: int = 3, image_size: int = 64,
                 ref_size: int = 128):
        super().__init__(nz, ngf, channels, image_size, norm_layer=VirtualBatchNorm)
        self.register_buffer("z_ref", torch.zeros(ref_size, nz))  # train.py fills it; checkpoints carry it

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n_ref = self.z_ref.shape[0]
        h = torch.cat([self.z_ref.to(z.dtype), z.reshape(z.shape[0], self.nz)]).view(-1, self.nz, 1, 1)
        for layer in self.main:
            h = layer(h, n_ref) if isinstance(layer, VirtualBatchNorm) else layer(h)
        return h[n_ref:]


def build_generator(options: dict) -> Generator:
    """G as a run's options describe it; options missing from older checkpoints mean 'off'."""
    args = (options["nz"], options["ngf"], options["channels"], options["image_size"])
    if options.get("virtual_batch_norm", False):
        return VBNGenerator(*args, ref_size=options["vbn_ref_size"])
    return Generator(*args)


def build_discriminator(options: dict) -> Discriminator:
    """D as a run's options describe it; options missing from older checkpoints mean 'off'."""
    args = (options["ndf"], options["channels"], options["image_size"])
    if options.get("minibatch_discrimination", False):
        return MinibatchDiscriminator(*args, kernels=options["minibatch_kernels"],
                                      kernel_dims=options["minibatch_dims"])
    return Discriminator(*args)
