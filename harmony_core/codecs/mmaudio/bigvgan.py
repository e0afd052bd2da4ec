"""BigVGAN vocoder (v1 as MMAudio's 16k mode uses it; v2 described by the same config).

Reference: hkchengrex/MMAudio `mmaudio/ext/bigvgan/models.py::BigVGANVocoder` + `bigvgan_vocoder.yml`
(v1, 16 kHz, 80 mels, x256) and NVIDIA/BigVGAN `bigvgan.py` + `configs/bigvgan_v2_44khz_128band_512x.json`
(v2, used by MMAudio's 44k mode). v2 is the same AMP generator; it differs only by config values:
128 mels, upsample x[8,4,2,2,2,2] (kernels [16,8,4,4,4,4]), `use_tanh_at_final=False` (clamp to
[-1, 1] instead of tanh) and `use_bias_at_final=False` (conv_post has no bias).

mel [B, num_mels, F] -> wave [B, 1, F * prod(upsample_rates)].

Checkpoints store weight-normed convs in one of three layouts, all accepted through `WEIGHT_NORM_KEYS`
and fused at load: legacy `<conv>.weight_g` / `<conv>.weight_v` (torch.nn.utils.weight_norm, e.g.
BigVGAN-era `generator` dicts), `<conv>.parametrizations.weight.original0` / `original1`
(torch.nn.utils.parametrizations.weight_norm) and plain fused `<conv>.weight`.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from ...loading.strict import load_strict, strip_prefix
from .bigvgan_layers import AMPBlock1, AMPBlock2, make_activation

logger = logging.getLogger(__name__)

# Declarative key map: weight-norm layout -> (suffix of g, suffix of v); both fuse to `<conv>.weight`.
WEIGHT_NORM_KEYS: dict[str, tuple[str, str]] = {
    "legacy": (".weight_g", ".weight_v"),
    "parametrized": (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
}
# Prefixes some checkpoint conversions keep (the reference reads torch.load(ckpt)['generator']).
CHECKPOINT_PREFIXES: tuple[str, ...] = ("generator.", "vocoder.")


@dataclass(frozen=True)
class BigVGANConfig:
    """Generator hyper-parameters (the structural subset of BigVGAN's JSON/YAML config)."""

    num_mels: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    resblock: str = "1"
    activation: str = "snakebeta"
    snake_logscale: bool = True
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True

    @property
    def hop(self) -> int:
        """Output samples per mel frame (product of the upsample rates)."""
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> BigVGANConfig:
        """Build from a reference config dict (JSON/YAML); training-only fields are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            if key in kw:
                kw[key] = tuple(int(v) for v in kw[key])
        if "resblock_dilation_sizes" in kw:
            kw["resblock_dilation_sizes"] = tuple(tuple(int(x) for x in ds)
                                                  for ds in kw["resblock_dilation_sizes"])
        if "resblock" in kw:
            kw["resblock"] = str(kw["resblock"])
        required = {"num_mels", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel"}
        missing = sorted(required - set(kw))
        if missing:
            raise ValueError(f"BigVGAN config lacks {missing}")
        return cls(**kw)


BIGVGAN_V1_16K = BigVGANConfig(num_mels=80, upsample_rates=(4, 4, 2, 2, 2, 2),
                               upsample_kernel_sizes=(8, 8, 4, 4, 4, 4), upsample_initial_channel=1536)
BIGVGAN_V2_44K_512X = BigVGANConfig(num_mels=128, upsample_rates=(8, 4, 2, 2, 2, 2),
                                    upsample_kernel_sizes=(16, 8, 4, 4, 4, 4), upsample_initial_channel=1536,
                                    use_tanh_at_final=False, use_bias_at_final=False)
BIGVGAN_PRESETS: dict[str, BigVGANConfig] = {"16k": BIGVGAN_V1_16K, "44k": BIGVGAN_V2_44K_512X}


def fuse_weight_norm_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite every (g, v) weight-norm pair of `WEIGHT_NORM_KEYS` into `<conv>.weight = g * v / ||v||`.

    The norm runs over all dims but 0 (for ConvTranspose1d dim 0 is the input channel), without eps,
    in float32 at least. Other keys pass through. A g without its v (or the reverse) is an error.
    """
    out: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        for layout, (g_suffix, v_suffix) in WEIGHT_NORM_KEYS.items():
            role = "g" if key.endswith(g_suffix) else "v" if key.endswith(v_suffix) else None
            if role is not None:
                base = key[: -len(g_suffix if role == "g" else v_suffix)]
                pairs.setdefault(f"{base}\0{layout}", {})[role] = value
                break
        else:
            out[key] = value
    for tag, gv in pairs.items():
        base, layout = tag.split("\0")
        if set(gv) != {"g", "v"}:
            raise ValueError(f"weight-norm pair incomplete for {base!r} ({layout} layout): "
                             f"has only {sorted(gv)}, expected both g and v")
        g, v = gv["g"], gv["v"]
        work = torch.promote_types(v.dtype, torch.float32)
        norm = torch.linalg.vector_norm(v.to(work), dim=tuple(range(1, v.ndim)), keepdim=True)  # [C0, 1, 1]
        out[f"{base}.weight"] = (v.to(work) * (g.to(work) / norm)).to(v.dtype)
    return out


def bigvgan_config_from_state_dict(sd: Mapping[str, torch.Tensor], base: BigVGANConfig) -> BigVGANConfig:
    """`base` with num_mels, upsample_initial_channel, final bias, activation and resblock type read from
    the (fused) reference-named state dict. Upsample rates cannot be read from shapes and stay `base`'s."""
    if "conv_pre.weight" not in sd:
        raise ValueError("not a BigVGAN state dict: no 'conv_pre' weight (expected reference key names such "
                         "as 'conv_pre.weight_v', 'ups.0.0.weight_g', 'resblocks.0.convs1.0.bias')")
    initial, num_mels = (int(n) for n in sd["conv_pre.weight"].shape[:2])
    activation = "snakebeta" if any(k.endswith(".act.beta") for k in sd) else "snake"
    resblock = "1" if any(".convs1." in k for k in sd) else "2"
    cfg = replace(base, num_mels=num_mels, upsample_initial_channel=initial, activation=activation,
                  resblock=resblock, use_bias_at_final="conv_post.bias" in sd)
    if cfg != base:
        logger.info("BigVGAN config adjusted from the weights' shapes: %s", cfg)
    return cfg


class BigVGAN(nn.Module):
    """BigVGAN generator with fused (plain) convolutions; reference parameter names."""

    def __init__(self, cfg: BigVGANConfig) -> None:
        super().__init__()
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length")
        if cfg.resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' (AMPBlock1) or '2' (AMPBlock2), got {cfg.resblock!r}")
        self.cfg = cfg
        ch0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.num_mels, ch0, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            nn.ModuleList([nn.ConvTranspose1d(ch0 // 2 ** i, ch0 // 2 ** (i + 1), k, u,
                                              padding=(k - u) // 2)])
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)))
        block = AMPBlock1 if cfg.resblock == "1" else AMPBlock2
        self.resblocks = nn.ModuleList(
            block(ch0 // 2 ** (i + 1), k, tuple(d), cfg.activation, cfg.snake_logscale)
            for i in range(len(self.ups))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        ch = ch0 // 2 ** len(self.ups)
        self.activation_post = make_activation(cfg.activation, ch, cfg.snake_logscale)
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=cfg.use_bias_at_final)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, num_mels, F] -> wave [B, 1, F * hop] in [-1, 1]."""
        if mel.ndim != 3 or mel.shape[1] != self.cfg.num_mels:
            raise ValueError(f"BigVGAN expects a mel [B, {self.cfg.num_mels}, F], got {tuple(mel.shape)}")
        x = self.conv_pre(mel)
        n = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up[0](x)  # [B, C_i, T * rate_i]
            x = sum(self.resblocks[i * n + j](x) for j in range(n)) / n
        x = self.conv_post(self.activation_post(x))  # [B, 1, F * hop]
        return torch.tanh(x) if self.cfg.use_tanh_at_final else x.clamp(-1.0, 1.0)

    def load_reference_weights(self, sd: Mapping[str, torch.Tensor], source: str = "BigVGAN state dict",
                               assign: bool = False) -> BigVGAN:
        """Strictly load a reference state dict in any of the three weight layouts (fused at load)."""
        fused = fuse_weight_norm_keys(strip_prefix(sd, CHECKPOINT_PREFIXES))
        load_strict(self, fused, source, assign=assign)
        return self
