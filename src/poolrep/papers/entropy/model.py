"""The networks of the ``entropy`` stage: the small CIFAR ResNet (``body``) with a pooling head
(:class:`poolrep.heads.PoolHead`), its training-time form (channels-last), the maps of a model, and the statistics
of a weight map."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...features import apply_batched
from ...heads import POOLINGS, PoolHead
from ...pooling.entropy import entropy_from_logits, entropy_weights

WEIGHTED = tuple(p for p in POOLINGS if p not in ("gap", "gmp"))  # poolings that weigh locations (maps to show)


CIFAR_MEAN = (0.4914, 0.4822, 0.4465)


CIFAR_STD = (0.2470, 0.2435, 0.2616)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1-conv projection) shortcut, He et al. 2016.

    ``groups = S``: S such blocks side by side in one (``cin``, ``cout`` per block; every convolution grouped, so the
    S blocks share nothing; BatchNorm is per channel, hence per block): see :class:`GroupedNet`."""

    def __init__(self, cin: int, cout: int, stride: int = 1, groups: int = 1):
        super().__init__()
        g = groups
        self.conv1 = nn.Conv2d(cin * g, cout * g, 3, stride, 1, bias=False, groups=g)
        self.bn1 = nn.BatchNorm2d(cout * g)
        self.conv2 = nn.Conv2d(cout * g, cout * g, 3, 1, 1, bias=False, groups=g)
        self.bn2 = nn.BatchNorm2d(cout * g)
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin * g, cout * g, 1, stride, bias=False, groups=g), nn.BatchNorm2d(cout * g)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.short(x))


class SmallResNet(nn.Module):
    """CIFAR ResNet body: 3x3 stem, then one stage per width (stride 2 from the second), ``blocks`` blocks each.

    ``widths=(16, 32, 64), blocks=1`` on 32x32 images gives ``N x 64 x 8 x 8`` maps (a cut-down ResNet-8; the
    paper's ResNets are far deeper). ``stem_stride=2`` makes the stem a stride-2 convolution, as the stems of He et
    al.'s ImageNet ResNets are: every later layer then runs at half the side, ``N x 64 x 4 x 4`` maps, about a
    fifth of the time per image on a cpu (a cut for cpu time: more epochs in the same budget; see
    ``benchmarks/entropy_recipe.py`` for the probe of how many epochs reach a plateau).

    ``groups = S``: S bodies side by side (:class:`GroupedNet`): images ``N x 3S x H x W`` (body s reads channels
    3s..3s+2) -> maps ``N x S*D x h x w``; the same state-dict keys, each tensor the S bodies' concatenated."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), blocks: int = 1, stem_stride: int = 1, groups: int = 1):
        super().__init__()
        if not widths or blocks < 1:
            raise ValueError("need at least one stage and one block per stage")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        g = groups
        self.stem = nn.Sequential(
            nn.Conv2d(3 * g, widths[0] * g, 3, stem_stride, 1, bias=False, groups=g),
            nn.BatchNorm2d(widths[0] * g),
            nn.ReLU(),
        )
        layers, cin = [], widths[0]
        for s, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, stride=2 if (s > 0 and b == 0) else 1, groups=g))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.out_channels, self.groups = cin, g
        self.register_buffer("mean", torch.tensor(CIFAR_MEAN).repeat(g).view(1, 3 * g, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR_STD).repeat(g).view(1, 3 * g, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 * self.groups:
            raise ValueError(f"expected images N x {3 * self.groups} x H x W in [0, 1], got shape {tuple(x.shape)}")
        return self.layers(self.stem((x - self.mean) / self.std))


class Net(nn.Module):
    def __init__(self, body: nn.Module, head: PoolHead):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def cifar_net(
    pooling: str,
    n_classes: int = 10,
    widths=(16, 32, 64),
    blocks: int = 1,
    temperature: float = 1.0,
    stem_stride: int = 1,
) -> Net:
    body = SmallResNet(tuple(widths), blocks, stem_stride)
    return Net(body, PoolHead(pooling, body.out_channels, n_classes, temperature))


class GroupedNet(nn.Module):
    """S networks of one pooling side by side, trained as one: the seeds of a pooling in one set of convolutions.

    The body is :class:`SmallResNet` with ``groups = S`` (grouped convolutions: body s sees only its own input
    channels, its own weights; BatchNorm is per channel, so per body); the head pools and classifies each body's
    maps with that network's own weights (``PoolHead``'s operations, written over a seed axis). Input: each
    network's own batch, side by side in the channels (``N x 3S x H x W``); output: logits ``N x S x C``. With the
    S losses summed (``poolrep.heads.train``), each network's gradient is the one it would get alone, and SGD's
    update is element-wise: S networks trained apart, up to float rounding, in fewer and larger kernels.

    :meth:`pack` builds it from S trained-apart ``Net``s (the same recipe) and :meth:`unpack` gives them back."""

    def __init__(self, nets: list[Net], config: dict):
        super().__init__()
        if not nets:
            raise ValueError("GroupedNet needs at least one network")
        head = nets[0].head
        self.config, self.S = dict(config), len(nets)
        self.pooling, self.temperature = head.pooling, float(config["temperature"])
        if head.drop.p:
            raise ValueError("GroupedNet has no dropout; the CIFAR heads train without it")
        self.body = SmallResNet(tuple(config["widths"]), config["blocks"], config["stem_stride"], groups=self.S)
        body = [n.body.state_dict() for n in nets]
        self.body.load_state_dict({k: _join(k, [b[k] for b in body]) for k in body[0]})
        self.fc_weight = nn.Parameter(torch.stack([n.head.fc.weight.detach() for n in nets]).clone())  # S x C x D
        self.fc_bias = nn.Parameter(torch.stack([n.head.fc.bias.detach() for n in nets]).clone())  # S x C
        if self.pooling == "attention":
            self.score_weight = nn.Parameter(torch.stack([n.head.pool.score.weight.detach().flatten() for n in nets]))
            self.score_bias = nn.Parameter(torch.cat([n.head.pool.score.bias.detach() for n in nets]))
            self.score_temperature = nets[0].head.pool.temperature
        elif self.pooling not in ("gap", "gmp") and not self.pooling.startswith("entropy_"):
            raise ValueError(f"GroupedNet: unknown pooling {self.pooling!r}")

    @classmethod
    def pack(cls, nets: list[Net], config: dict) -> GroupedNet:
        """``config``: the ``training_net`` arguments (widths, blocks, stem_stride, temperature, n_classes)."""
        return cls(nets, config).to(memory_format=memory_format(config["widths"]))

    def unpack(self) -> list[Net]:
        """The S networks, each a ``training_net`` with its own weights."""
        c = self.config
        body = {k: _split(k, v, self.S) for k, v in self.body.state_dict().items()}
        nets = []
        for s in range(self.S):
            net = training_net(
                self.pooling, c["n_classes"], c["widths"], c["blocks"], c["temperature"], c["stem_stride"]
            )
            state = {f"body.{k}": v[s] for k, v in body.items()}
            state["head.fc.weight"], state["head.fc.bias"] = self.fc_weight[s], self.fc_bias[s]
            if self.pooling.startswith("entropy_"):  # the entropy pooling's classifier is the head's own fc
                state["head.pool.classifier.weight"], state["head.pool.classifier.bias"] = (
                    self.fc_weight[s],
                    self.fc_bias[s],
                )
            if self.pooling == "attention":
                state["head.pool.score.weight"] = self.score_weight[s].view(1, -1, 1, 1)
                state["head.pool.score.bias"] = self.score_bias[s : s + 1]
            net.load_state_dict({k: v.detach().clone() for k, v in state.items()})
            nets.append(net.train(self.training))
        return nets

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.body(x)
        n, _, h, w = maps.shape
        f = maps.float().reshape(n, self.S, -1, h * w)  # N x S x D x L
        if self.pooling == "gap":
            g = f.mean(-1)
        elif self.pooling == "gmp":
            g = f.amax(-1)
        else:
            if self.pooling == "attention":
                a = torch.einsum("nsdl,sd->nsl", f, self.score_weight) + self.score_bias[:, None]
                wts = torch.softmax(a / self.score_temperature, dim=-1)
            else:
                z = torch.einsum("nsdl,scd->nscl", f, self.fc_weight) + self.fc_bias[:, :, None]
                ent = entropy_from_logits(z, dim=2)  # N x S x L
                weighting = self.pooling.removeprefix("entropy_")
                wts = entropy_weights(
                    ent.reshape(n * self.S, -1),
                    self.fc_weight.shape[1],
                    "linear" if weighting == "detached" else weighting,
                    self.temperature,
                ).reshape(n, self.S, -1)
                if weighting == "detached":
                    wts = wts.detach()
                if weighting == "unnormalised":
                    wts = wts / wts.shape[-1]
            g = torch.einsum("nsdl,nsl->nsd", f, wts)
        return torch.einsum("nsd,scd->nsc", g, self.fc_weight) + self.fc_bias

    @torch.no_grad()
    def correct(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256, device="cpu") -> np.ndarray:
        """``N x S`` 0/1: does network s classify image i (the same images for every network) right? In eval mode
        (BatchNorm's running statistics, which the images do not update), then back in the mode it was in."""
        was_training = self.training
        self.eval()
        try:
            logits = apply_batched(lambda b: self(b.repeat(1, self.S, 1, 1)), x, batch_size=batch_size, device=device)
        finally:
            self.train(was_training)
        return (logits.argmax(-1) == torch.as_tensor(y)[:, None]).numpy()


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's cpu kernels would use (inductor's own search: ``$CXX``, else ``g++``), or
    None when there is none."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        return get_cpp_compiler()
    except Exception:  # inductor raises its own error types when the search finds nothing
        return None


# dynamo compiles GroupedNet.forward once per pooling and batch shape (the same graphs serve every network of that
# pooling: modules are inlined, their weights are inputs), so a training process of 4 poolings holds 8 graphs of
# one function: dynamo's default limit. Beyond its limit dynamo silently runs eager; here the limit is higher and
# hitting it is an error.
RECOMPILE_LIMIT = 32


def compiled(model: GroupedNet) -> nn.Module:
    """``model`` under ``torch.compile`` (static shapes: one graph for the full batch, one for a short last batch),
    as ``fit_cifar`` trains it with ``compile_grouped``: inductor fuses each BatchNorm with its ReLU and residual
    add, which take ~40 % of an eager grouped step (the convolutions run at ~86 % of the 1-thread convolution
    rate, profile of 2026-12-07). The same computation up to float rounding (tests/test_entropy_grouped.py);
    the module's own methods (``correct``, ``unpack``) stay eager. One inductor compile worker (the stage's
    training processes have one core each). Sets dynamo's recompile limit of this process to
    ``RECOMPILE_LIMIT`` and makes hitting it an error (see there)."""
    if cpp_compiler() is None:
        raise RuntimeError(
            "compile_grouped needs a C++ compiler for torch.compile's cpu kernels (inductor looks for $CXX, then "
            "g++): install one, or set entropy.compile_grouped: false in params.yaml"
        )
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return torch.compile(model, dynamic=False, options={"compile_threads": 1})


def _join(key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return tensors[0]
    return torch.cat(tensors, dim=1 if key in ("mean", "std") else 0)


def _split(key: str, tensor: torch.Tensor, S: int) -> list[torch.Tensor]:
    if key.endswith("num_batches_tracked"):
        return [tensor] * S
    return list(tensor.chunk(S, dim=1 if key in ("mean", "std") else 0))


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``N x H x W x 3`` -> float ``N x 3 x H x W`` in [0, 1]."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images N x H x W x 3, got shape {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """``N x h x w`` maps bilinearly upsampled to ``size`` and min-max scaled to [0, 1] per map (for overlays)."""
    m = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = m.flatten(1).min(1).values[:, None, None]
    hi = m.flatten(1).max(1).values[:, None, None]
    return ((m - lo) / (hi - lo).clamp(min=1e-12)).cpu().numpy()


def weight_stats(w: torch.Tensor) -> dict[str, float]:
    """How concentrated location weights ``N x h x w`` are: mean max weight, and mean weight entropy relative to
    uniform (1 = uniform, 0 = one location), both of the weights renormalised to sum to 1 per map (the
    unnormalised variant's are not)."""
    flat = w.flatten(1).clamp(min=0)
    flat = flat / flat.sum(1, keepdim=True).clamp(min=1e-12)
    ent = -(flat * flat.clamp(min=1e-12).log()).sum(1) / np.log(flat.shape[1])
    return {"max_weight": float(flat.max(1).values.mean()), "rel_entropy": float(ent.mean())}


# torch 2.14.1's cpu (oneDNN) backward of a strided 1x1 convolution in channels-last memory corrupts the heap with
# one thread when it has fewer than 8 input channels (a ResNet shortcut of widths (4, 8, 8)): glibc aborts with
# "double free or corruption" or the process segfaults (issue 29, measured on an AMD EPYC without AVX-512; 16 -> 32
# and 32 -> 64 do not crash, and neither do 2 threads nor contiguous memory). Such narrow networks run contiguous.
CHANNELS_LAST_MIN_WIDTH = 8


def memory_format(widths) -> torch.memory_format:
    """The memory format the CIFAR ResNet of ``widths`` trains in: channels-last (the faster one) unless a width is
    below ``CHANNELS_LAST_MIN_WIDTH``, where channels-last hits the crashing kernel above."""
    return torch.channels_last if min(widths) >= CHANNELS_LAST_MIN_WIDTH else torch.contiguous_format


def training_net(pooling: str, n_classes: int, widths, blocks: int, temperature: float, stem_stride: int) -> Net:
    """``cifar_net`` in ``memory_format(widths)``, as ``fit_cifar`` trains it and ``cifar_from_state`` rebuilds it.
    Channels-last: the same convolutions, ~18 % less time per epoch on this machine's cpu (2.55 vs 3.10 s for 5,000
    images, ResNet-8 with a stride-2 stem)."""
    return cifar_net(pooling, n_classes, widths, blocks, temperature, stem_stride).to(
        memory_format=memory_format(widths)
    )


def seed_nets(pooling: str, seeds, n_classes: int, widths, blocks: int, temperature: float, stem_stride: int):
    """One ``training_net`` per seed, each initialised as it would be alone (``torch.manual_seed(seed)``, then
    built), and the recipe :meth:`GroupedNet.pack` takes for them: ``(nets, config)``."""
    nets = []
    for s in seeds:
        torch.manual_seed(s)
        nets.append(training_net(pooling, n_classes, widths, blocks, temperature, stem_stride))
    config = dict(widths=widths, blocks=blocks, stem_stride=stem_stride, temperature=temperature, n_classes=n_classes)
    return nets, config


def maps_of(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Last feature maps of a ``Net`` (``model.body``) for images ``x``, on the cpu."""
    model.eval()
    return apply_batched(model.body, x, batch_size=batch_size)


@torch.no_grad()
def cam_agreement(cam: torch.Tensor, weights: torch.Tensor) -> float:
    """Mean over images of the Spearman rank correlation between a CAM and a weight map (both ``N x h x w``):
    does the pooling weight the locations the GAP model's CAM highlights?"""
    from scipy.stats import spearmanr

    if cam.shape != weights.shape:
        raise ValueError(f"cam {tuple(cam.shape)} and weights {tuple(weights.shape)} differ")
    rs = [spearmanr(a.flatten().numpy(), b.flatten().numpy()).statistic for a, b in zip(cam, weights)]
    rs = [r for r in rs if np.isfinite(r)]
    return float(np.mean(rs)) if rs else float("nan")
