"""pix2pixHD networks (Wang, Liu, Zhu, Tao, Kautz, Catanzaro 2018, arXiv:1711.11585).

Sec. 3.2, coarse-to-fine generator G = {G1, G2}, in the notation of CycleGAN's appendix:

  c7s1-k  reflection pad 3, 7x7 convolution (stride 1, k filters), InstanceNorm, ReLU
  dk      3x3 convolution, stride 2, k filters, InstanceNorm, ReLU
  Rk      residual block: two reflection-padded 3x3 convolutions with k filters, InstanceNorm
          after both, ReLU after the first only, plus the skip connection
  uk      3x3 transposed convolution, stride 1/2 (output_padding 1), k filters, IN, ReLU
  out     reflection pad 3, 7x7 convolution to 3 channels, Tanh (no norm)

    G1 (global generator, 1024x512):   c7s1-64, d128, d256, d512, d1024, R1024 x9,
                                       u512, u256, u128, u64, out
    G2 (local enhancer, 2048x1024):    front-end G2^(F): c7s1-32, d64
                                       back-end  G2^(B): R64 x3, u32, out
    G2^(B) reads G2^(F)(x) + [G1's last feature map, before its output block], both 64
    channels at half the input resolution; G1 reads x downsampled by 2.

Sec. 3.2, multi-scale discriminators D1, D2, D3: the same 70x70 PatchGAN (C64-C128-C256-C512,
then a 1-channel convolution; 4x4 kernels, LeakyReLU 0.2, no norm on C64) run on the
(label, image) pair at full, 1/2 and 1/4 resolution. Every layer's output is returned: the
feature matching loss L_FM of Sec. 3.2 compares them between real and fake.

Sec. 3.3, the input G and D read (`encode_input`): the label map one-hot encoded, plus the
instance boundary map, concatenated on channels (where the official code builds it too: in
the model, not in the data loader).

Sec. 3.4, instance-level feature embedding: an encoder-decoder E maps the real image to a
low-dimensional feature map, averaged over every instance, which G reads as extra input
channels; at test time the features come from k-means cluster centres.

Everything below follows the official code (NVIDIA/pix2pixHD, models/networks.py) in layer
widths, kernels, paddings and the order of layers. Where the code and the paper's text differ:
  * D's convolutions are 4x4 with padding 2 (ceil(3/2)), not 1 as in pix2pix: a stride-2 layer
    maps a side H to H/2 + 1, a stride-1 layer to H + 1 (64 -> 33, 17, 9, 10, 11 with 3 layers).
  * D's widths are capped at 512 (only matters for n_layers_D >= 4).
  * num_D: the paper (Sec. 3.2) uses 3 discriminators; the official option defaults to 2 and its
    2048x1024 scripts pass --num_D 3. We default to the paper's 3.
  * The local enhancer's G1 has ngf * 2**n_local_enhancers filters (64 when ngf is 32), its
    input pyramid uses AvgPool2d(3, stride 2, padding 1, count_include_pad=False), and only the
    outermost enhancer has the output block.
  * InstanceNorm without affine parameters (so no norm parameters at all) and every convolution
    keeps its bias, as the official default --norm instance builds them.
"""
from __future__ import annotations

import torch
import torch.nn as nn

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed): the
# batch-1 global generator gains nothing from NHWC in fp32 and loses in bf16. CUDA is not measured yet
# (no GPU lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": False, "cpu-bf16": False, "cuda": True}

# The official code's option defaults (options/base_options.py, train_options.py), snake_case.
# n_local_enhancers 0 means "G1 only" (the official --netG global); 1 or more builds the
# LocalEnhancer (the official --netG local), where ngf is the outermost enhancer's width
# (the official 2048x1024 scripts pass --ngf 32).
DEFAULTS = {
    "label_nc": 35,             # Cityscapes label ids; 0 = the input is an RGB image (input_nc)
    "input_nc": 3,
    "output_nc": 3,
    "no_instance": False,       # True: no instance boundary map channel
    "instance_feat": False,     # Sec. 3.4 features pooled over instances (official --instance_feat)
    "label_feat": False,        # ... or over semantic labels (official --label_feat)
    "feat_num": 3,              # length of E's feature vector
    "ngf": 64,
    "n_downsample_global": 4,
    "n_blocks_global": 9,
    "n_local_enhancers": 0,
    "n_blocks_local": 3,
    "ndf": 64,
    "n_layers_D": 3,
    "num_D": 3,                 # the paper's 3 (official default 2; its 2048x1024 runs use 3)
    "nef": 16,
    "n_downsample_E": 4,
}


def _opt(options: dict, key: str):
    return options.get(key, DEFAULTS[key])


# ------------------------------------------------------------------ input channel arithmetic
def generator_in_channels(label_nc: int, use_instance: bool = True, feat_num: int = 0, input_nc: int = 3) -> int:
    """Channels G reads (Sec. 3.3, 3.4): label_nc one-hot label channels (or input_nc when
    label_nc is 0, i.e. a plain image is translated), + 1 instance boundary map (Sec. 3.3)
    unless instance maps are off, + feat_num encoded feature channels (Sec. 3.4; 0 when the
    features are off). Cityscapes: 35 + 1 = 36, or 39 with 3 features."""
    return (label_nc if label_nc != 0 else input_nc) + int(use_instance) + feat_num


def discriminator_in_channels(label_nc: int, use_instance: bool = True, output_nc: int = 3, input_nc: int = 3) -> int:
    """Channels D reads: the label channels (+1 boundary map) concatenated with the real or
    generated image. As in the official code, D does NOT see the encoded feature channels.
    Cityscapes: 35 + 1 + 3 = 39."""
    return generator_in_channels(label_nc, use_instance, 0, input_nc) + output_nc


def use_features(options: dict) -> bool:
    """Whether G reads Sec. 3.4's encoded features (and an Encoder is built): the official
    --instance_feat or --label_feat, with a non-zero feat_num."""
    return bool(_opt(options, "instance_feat") or _opt(options, "label_feat")) and _opt(options, "feat_num") > 0


def size_multiple(options: dict) -> int:
    """H and W must be divisible by this: G1 halves the size n_downsample_global times, and
    each local enhancer adds one more halving (its input pyramid plus its stride-2 front-end),
    so 2**(n_downsample_global + n_local_enhancers): 16 for G1 alone, 32 with one enhancer."""
    return 2 ** (_opt(options, "n_downsample_global") + _opt(options, "n_local_enhancers"))


# ------------------------------------------------------- Sec. 3.3: the generator's input
# The official code builds this in its model (pix2pixHD_model.py: encode_input, get_edges),
# not in its data loader: the datasets hand over class ids and instance ids as they are.
def one_hot(label: torch.Tensor, label_nc: int) -> torch.Tensor:
    """N x H x W class ids (or N x 1 x H x W) -> float N x label_nc x H x W, 1 at each pixel's
    class and 0 elsewhere: the one-hot semantic map the official encode_input builds with
    scatter_. An id >= label_nc raises an index error (the datasets check ids on load)."""
    if label.dim() == 3:
        label = label.unsqueeze(1)
    n, _, h, w = label.shape
    out = torch.zeros(n, label_nc, h, w, device=label.device)
    return out.scatter_(1, label.long(), 1.0)


def boundary_map(inst: torch.Tensor) -> torch.Tensor:
    """N x H x W instance ids (or N x 1 x H x W) -> float N x 1 x H x W instance boundary map
    (Sec. 3.3, Fig. 4), the official `get_edges`: a pixel is 1 where its id differs from its
    right or lower neighbour, and also where it differs from its left or upper neighbour, so
    both pixels on either side of a boundary are marked (a boundary is two pixels thick);
    only the four axis neighbours count, never the diagonals; the image border is not a
    boundary."""
    if inst.dim() == 3:
        inst = inst.unsqueeze(1)
    edge = torch.zeros(inst.shape, dtype=torch.bool, device=inst.device)
    horizontal = inst[..., :, 1:] != inst[..., :, :-1]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    vertical = inst[..., 1:, :] != inst[..., :-1, :]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    return edge.float()


def encode_input(label: torch.Tensor, inst: torch.Tensor | None, label_nc: int,
                 use_instance: bool = True) -> torch.Tensor:
    """The generator's (and the conditional discriminator's) input: one_hot(label) and, with
    instance maps, boundary_map(inst) concatenated on channels: label_nc + 1 channels. With
    label_nc 0 `label` is already an image (N x 3 x H x W) and passes through (plus the
    boundary map when instances are used). E's features (Sec. 3.4) are appended by the caller."""
    x = label.float() if label_nc == 0 else one_hot(label, label_nc)
    if use_instance:
        x = torch.cat([x, boundary_map(inst).to(x.dtype)], dim=1)
    return x


def input_channels(label_nc: int, use_instance: bool, image_nc: int = 3) -> int:
    """Channels of encode_input's output: generator_in_channels without features."""
    return generator_in_channels(label_nc, use_instance, 0, image_nc)


# ------------------------------------------------------------------------------ layer blocks
def norm(channels: int) -> nn.Module:
    """InstanceNorm without learned scale/shift or running statistics: the official default
    (--norm instance builds nn.InstanceNorm2d with affine=False)."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def c7s1(in_ch: int, out_ch: int) -> list[nn.Module]:
    """c7s1-k: reflection pad 3, 7x7 convolution, InstanceNorm, ReLU."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, 7), norm(out_ch), nn.ReLU(True)]


def down(in_ch: int, out_ch: int) -> list[nn.Module]:
    """dk: 3x3 convolution, stride 2, zero padding 1 (halves the size), InstanceNorm, ReLU."""
    return [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), norm(out_ch), nn.ReLU(True)]


def up(in_ch: int, out_ch: int) -> list[nn.Module]:
    """uk: 3x3 transposed convolution, stride 2, padding 1, output_padding 1 (doubles the
    size exactly), InstanceNorm, ReLU."""
    return [nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1), norm(out_ch),
            nn.ReLU(True)]


def output_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """The last c7s1-3: reflection pad 3, 7x7 convolution to the image channels, Tanh, no norm."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, 7), nn.Tanh())


class ResnetBlock(nn.Module):
    """Rk: x + [pad, conv3x3, IN, ReLU, pad, conv3x3, IN](x), reflection padding, no dropout
    (the official default). The same block as cyclegan/model.py's ResidualBlock, written anew
    here so that this folder stands alone."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


# ------------------------------------------------------------------------- Sec. 3.2: G1
class GlobalGenerator(nn.Module):
    """G1, the global generator network (Sec. 3.2, Fig. 3): a front-end of c7s1-ngf and
    n_downsampling stride-2 convolutions doubling the width (64 -> 1024), n_blocks residual
    blocks, a back-end of n_downsampling transposed convolutions halving it, then the output
    block (c7s1-3, Tanh). Built on Johnson et al.'s architecture, like CycleGAN's generator,
    with two more downsamplings.

    `features(x)` is G1's last feature map (ngf channels, input resolution), before the output
    block: the local enhancer adds it to its front-end's output. `with_output=False` leaves
    the output block out (the LocalEnhancer's G1: the official code drops those three layers);
    `forward` then returns the features."""

    def __init__(self, in_channels: int, out_channels: int = 3, ngf: int = 64, n_downsampling: int = 4,
                 n_blocks: int = 9, with_output: bool = True):
        super().__init__()
        layers: list[nn.Module] = c7s1(in_channels, ngf)
        for i in range(n_downsampling):                         # d128, d256, d512, d1024
            layers += down(ngf * 2 ** i, ngf * 2 ** (i + 1))
        width = ngf * 2 ** n_downsampling
        layers += [ResnetBlock(width) for _ in range(n_blocks)]  # R1024 x9
        for i in range(n_downsampling, 0, -1):                   # u512, u256, u128, u64
            layers += up(ngf * 2 ** i, ngf * 2 ** (i - 1))
        self.model = nn.Sequential(*layers)
        self.output = output_block(ngf, out_channels) if with_output else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.model(x)
        return h if self.output is None else self.output(h)


# ------------------------------------------------------------------------- Sec. 3.2: G2
class EnhancerLevel(nn.Module):
    """One local enhancer network G2 (Sec. 3.2): front-end G2^(F) = c7s1-k, d2k on the input at
    this level's resolution; back-end G2^(B) = R2k x n_blocks, uk, and (outermost level only) the
    output block. G2^(B) reads the element-wise sum of G2^(F)'s output and the coarser level's
    last feature map: this is how the global information of G1 reaches G2."""

    def __init__(self, in_channels: int, out_channels: int, width: int, n_blocks: int, outermost: bool):
        super().__init__()
        self.front_end = nn.Sequential(*c7s1(in_channels, width), *down(width, 2 * width))
        back: list[nn.Module] = [ResnetBlock(2 * width) for _ in range(n_blocks)]
        back += up(2 * width, width)
        if outermost:
            back += list(output_block(width, out_channels))
        self.back_end = nn.Sequential(*back)

    def forward(self, x: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
        return self.back_end(self.front_end(x) + coarser)


class LocalEnhancer(nn.Module):
    """G = {G1, G2} (Sec. 3.2): G1 (`global_generator`, width ngf * 2**n_local_enhancers, no
    output block) runs on the input downsampled n_local_enhancers times; enhancer n = 1, 2, ...
    (`enhancers[n - 1]`, coarse to fine, each at twice the resolution of the previous) adds
    its front-end to the previous level's features. The paper uses one enhancer (1024x512 ->
    2048x1024) and says more can be added for higher resolutions; more than one works here.

    Training (Sec. 3.2): G1 is trained alone first (its weights then go in with `load_global`),
    then the local enhancer, then all the networks are fine-tuned together. The official code
    does the middle phase by optimising only the outermost enhancer for --niter_fix_global
    epochs (`enhancer_parameters()`), G1 (and any inner enhancer) left fixed."""

    def __init__(self, in_channels: int, out_channels: int = 3, ngf: int = 32, n_downsample_global: int = 4,
                 n_blocks_global: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3):
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError("a LocalEnhancer needs n_local_enhancers >= 1 (use GlobalGenerator for 0)")
        self.n_local_enhancers = n_local_enhancers
        self.global_generator = GlobalGenerator(in_channels, out_channels, ngf * 2 ** n_local_enhancers,
                                                n_downsample_global, n_blocks_global, with_output=False)
        self.enhancers = nn.ModuleList(
            EnhancerLevel(in_channels, out_channels, ngf * 2 ** (n_local_enhancers - n), n_blocks_local,
                          outermost=n == n_local_enhancers)
            for n in range(1, n_local_enhancers + 1))
        # the input pyramid: a 3x3 average with stride 2 (border windows average only real pixels)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [x]                                  # pyramid[k]: x downsampled k times
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        h = self.global_generator.features(pyramid[-1])
        for n, enhancer in enumerate(self.enhancers, start=1):
            h = enhancer(pyramid[self.n_local_enhancers - n], h)
        return h

    def load_global(self, state_dict: dict) -> None:
        """Load a standalone GlobalGenerator's state_dict (same in_channels, its ngf equal to this
        G1's width) into G1, dropping that generator's output block, which this G1 does not have.
        Any other mismatch raises, as in load_state_dict(strict=True)."""
        kept = {k: v for k, v in state_dict.items() if not k.startswith("output.")}
        self.global_generator.load_state_dict(kept, strict=True)

    def enhancer_parameters(self):
        """The outermost enhancer's parameters: what the official code trains alone during its
        first --niter_fix_global epochs (G1 and any inner enhancers stay fixed)."""
        return self.enhancers[-1].parameters()


# --------------------------------------------------------------- Sec. 3.2: discriminators
class NLayerDiscriminator(nn.Module):
    """The 70x70 PatchGAN of pix2pix that Sec. 3.2 uses for each scale: C64-C128-C256-C512 and a
    convolution to one channel; 4x4 kernels with padding 2 (the official code); stride 2 for
    C64 and the n_layers - 1 layers after it, stride 1 for the last C-layer and the output;
    LeakyReLU(0.2); InstanceNorm on every C-layer but the first; widths capped at 512; no
    sigmoid (the paper trains with the least-squares GAN loss).

    forward returns the list of every layer's output (n_layers + 2 maps), the last being the
    1-channel map of patch scores: the feature matching loss L_FM uses all but the last."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        k, pad = 4, 2  # padding = ceil((k - 1) / 2), as the official code computes it
        layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, k, stride=2, padding=pad), nn.LeakyReLU(0.2, True))]
        width = ndf
        for n in range(1, n_layers + 1):
            nxt = min(width * 2, 512)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(width, nxt, k, stride=stride, padding=pad), norm(nxt),
                                        nn.LeakyReLU(0.2, True)))
            width = nxt
        layers.append(nn.Sequential(nn.Conv2d(width, 1, k, stride=1, padding=pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """D1, D2, D3 (Sec. 3.2): num_D discriminators with the same architecture (separate
    weights), D_k run on the input downsampled k - 1 times by AvgPool2d(3, stride 2, padding 1,
    count_include_pad=False). The coarsest sees the most global view, the finest guides details.

    forward returns a list with one entry per scale, FINEST FIRST (result[0] is D1 on the full
    resolution input, as the official code orders its output), each entry the list of that
    discriminator's layer outputs (NLayerDiscriminator.forward). `discriminators[k]` is the one
    run after k downsamplings."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, num_D: int = 3):
        super().__init__()
        self.discriminators = nn.ModuleList(NLayerDiscriminator(in_channels, ndf, n_layers) for _ in range(num_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for k, D in enumerate(self.discriminators):
            if k > 0:
                x = self.downsample(x)
            results.append(D(x))
        return results


# ------------------------------------------------------- Sec. 3.4: instance-level features
def _instance_means(features: torch.Tensor, inst: torch.Tensor):
    """Group the pixels of every (image, instance id) pair. Returns (image, id, inverse, means):
    group g is instance id[g] of image image[g]; inverse (B * H * W,) gives each pixel's group
    (pixels in (b, h, w) order); means (G, C) the mean feature of each group."""
    B, C, H, W = features.shape
    if inst.numel() != B * H * W:
        raise ValueError(f"instance map of shape {tuple(inst.shape)} does not match features {tuple(features.shape)}")
    ids = inst.reshape(B, H * W).long()
    low = ids.min()
    span = ids.max() - low + 1
    key = (ids - low) + torch.arange(B, device=ids.device).unsqueeze(1) * span  # one key per (image, id)
    keys, inverse = torch.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    flat = features.permute(0, 2, 3, 1).reshape(B * H * W, C)
    sums = flat.new_zeros(len(keys), C).index_add_(0, inverse, flat)
    counts = torch.bincount(inverse, minlength=len(keys)).to(flat.dtype)
    return keys // span, keys % span + low, inverse, sums / counts.unsqueeze(1)


def instance_mean_pool(features: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """Instance-wise average pooling (Sec. 3.4): every pixel of an instance gets the mean of the
    features over that instance, per image and per channel, so the feature map is constant
    inside each instance. `inst`: (B, 1, H, W) or (B, H, W) integer instance ids (Cityscapes:
    label * 1000 + k for things, the label id for stuff). Vectorised over the batch with
    index_add; differentiable with respect to `features`."""
    B, C, H, W = features.shape
    _, _, inverse, means = _instance_means(features, inst)
    return means[inverse].reshape(B, H, W, C).permute(0, 3, 1, 2)


def instance_features(features: torch.Tensor, inst: torch.Tensor) -> list[list[tuple[int, torch.Tensor]]]:
    """Per image, the (instance id, mean feature vector over that instance) pairs, ids ascending:
    the points Sec. 3.4's k-means clusters per semantic category (the official code reads one
    pixel of E's already pooled output, which is the same mean)."""
    image, ids, _, means = _instance_means(features, inst)
    out: list[list[tuple[int, torch.Tensor]]] = [[] for _ in range(features.shape[0])]
    for b, i, mean in zip(image.tolist(), ids.tolist(), means):
        out[b].append((i, mean))
    return out


class Encoder(nn.Module):
    """E, the feature encoder network of Sec. 3.4: an encoder-decoder network (the
    official one is G1 without residual blocks: c7s1-nef, n_downsampling stride-2 convolutions,
    as many transposed ones, c7s1-feat_num with Tanh; nef 16, 4 downsamplings, 3 features), whose
    output is then averaged over every instance (`instance_mean_pool`).

    forward(image, inst) -> (B, out_channels, H, W), constant inside each instance;
    encode(image) is E's output before the pooling."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 16, n_downsampling: int = 4):
        super().__init__()
        layers: list[nn.Module] = c7s1(in_channels, ngf)
        for i in range(n_downsampling):
            layers += down(ngf * 2 ** i, ngf * 2 ** (i + 1))
        for i in range(n_downsampling, 0, -1):
            layers += up(ngf * 2 ** i, ngf * 2 ** (i - 1))
        layers += list(output_block(ngf, out_channels))
        self.model = nn.Sequential(*layers)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)

    def forward(self, image: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        return instance_mean_pool(self.model(image), inst)


# ------------------------------------------------- the official code's names for the same tensors
def official_key(ours: str, G: nn.Module) -> str:
    """The key NVIDIA/pix2pixHD gives one of our G's tensors. Its GlobalGenerator is one
    nn.Sequential `model` holding our `model` and then our output block (pad, conv, Tanh); its
    LocalEnhancer keeps G1's `model` without the output block, and enhancer n's front- and
    back-end as `model{n}_1` and `model{n}_2`. Its ResnetBlock calls the residual branch
    `conv_block`; layer indices are the same as ours."""
    key = ours.replace(".body.", ".conv_block.")
    if isinstance(G, LocalEnhancer):
        if key.startswith("global_generator.model."):
            return key[len("global_generator."):]
        n, part, rest = key.split(".", 3)[1:]
        return f"model{int(n) + 1}_{1 if part == 'front_end' else 2}.{rest}"
    if key.startswith("output."):
        index, rest = key[len("output."):].split(".", 1)
        return f"model.{len(G.model) + int(index)}.{rest}"
    return key


def official_options(state: dict) -> dict:
    """The options that rebuild the official G of a state dict, read from its tensors. The first
    convolution's input channels are read as label_nc one-hot labels plus the instance boundary
    map (the official defaults, and the released label2city models); `no_instance` reads them
    as labels only."""
    enhancers = sorted({int(k[len("model"):].split("_")[0]) for k in state if k.startswith("model") and "_" in
                        k.split(".")[0]})
    first = state["model.1.weight"]
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.") and ".conv_block." in k})
    if not blocks:
        raise ValueError("it has no residual blocks (model.N.conv_block)")
    width = state[f"model.{blocks[0]}.conv_block.1.weight"].shape[0]
    n_down = (width // first.shape[0]).bit_length() - 1
    options = {"label_nc": first.shape[1] - 1, "no_instance": False, "instance_feat": False, "label_feat": False,
               "feat_num": 0, "input_nc": 3, "n_downsample_global": n_down, "n_blocks_global": len(blocks),
               "n_local_enhancers": len(enhancers), "n_blocks_local": 3}
    if enhancers:
        outer = enhancers[-1]
        options["ngf"] = state[f"model{outer}_1.1.weight"].shape[0]
        options["n_blocks_local"] = len({k.split(".")[1] for k in state
                                         if k.startswith(f"model{outer}_2.") and ".conv_block." in k})
        last = max((k for k in state if k.startswith(f"model{outer}_2.") and k.endswith(".weight")),
                   key=lambda k: int(k.split(".")[1]))
    else:
        options["ngf"] = first.shape[0]
        last = max((k for k in state if k.startswith("model.") and k.endswith(".weight")),
                   key=lambda k: int(k.split(".")[1]))
    options["output_nc"] = state[last].shape[0]
    return options


def to_official_state(G: nn.Module) -> dict:
    """G's state dict under the official key names (a plain state dict, as the official train.py
    saves latest_net_G.pth): the networks are the same, so this is a renaming."""
    return {official_key(key, G): value.detach().clone() for key, value in G.state_dict().items()}


# ------------------------------------------------------------------- init and builders
def init_weights(m: nn.Module) -> None:
    """The official weights_init: convolution and transposed-convolution weights from N(0, 0.02),
    their biases left at PyTorch's default init (the official code does not touch them); norm
    layers with a scale (BatchNorm, or an affine InstanceNorm, not built by default) get scale
    N(1, 0.02) and shift 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build_generator(options: dict) -> nn.Module:
    """G from a run's options: GlobalGenerator when n_local_enhancers is 0, else LocalEnhancer
    (whose ngf is the outermost enhancer's width), initialised as the official code does."""
    in_ch = generator_in_channels(_opt(options, "label_nc"), not _opt(options, "no_instance"),
                                  _opt(options, "feat_num") if use_features(options) else 0,
                                  _opt(options, "input_nc"))
    out_ch, ngf = _opt(options, "output_nc"), _opt(options, "ngf")
    n_local = _opt(options, "n_local_enhancers")
    if n_local == 0:
        G: nn.Module = GlobalGenerator(in_ch, out_ch, ngf, _opt(options, "n_downsample_global"),
                                       _opt(options, "n_blocks_global"))
    else:
        G = LocalEnhancer(in_ch, out_ch, ngf, _opt(options, "n_downsample_global"), _opt(options, "n_blocks_global"),
                          n_local, _opt(options, "n_blocks_local"))
    G.apply(init_weights)
    return G


def build_discriminator(options: dict) -> MultiscaleDiscriminator:
    """The num_D-scale D on (label channels [+ boundary map], image)."""
    in_ch = discriminator_in_channels(_opt(options, "label_nc"), not _opt(options, "no_instance"),
                                      _opt(options, "output_nc"), _opt(options, "input_nc"))
    D = MultiscaleDiscriminator(in_ch, _opt(options, "ndf"), _opt(options, "n_layers_D"), _opt(options, "num_D"))
    D.apply(init_weights)
    return D


def build_encoder(options: dict) -> Encoder | None:
    """E (Sec. 3.4) on the real image (output_nc channels) to feat_num features, or None when
    the features are off (see use_features)."""
    if not use_features(options):
        return None
    E = Encoder(_opt(options, "output_nc"), _opt(options, "feat_num"), _opt(options, "nef"),
                _opt(options, "n_downsample_E"))
    E.apply(init_weights)
    return E
