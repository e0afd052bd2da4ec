"""Frozen configuration dataclasses and named presets.

The video tower is Wan2.2-TI2V-5B (its own hyper-parameters, `wan/configs/wan_ti2v_5B.py`). The paper
(arXiv 2511.21579) does not publish the audio tower or the interaction sizes; every choice made where it
is silent is written next to the field that carries it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

INTERACTION_KINDS = ("gldi", "global", "none", "uniavgen")
GUIDANCE_KINDS = ("synccfg", "uniavgen")   # sampling.Guidance.kind: Harmony's SyncCFG, UniAVGen's MA-CFG
SCHEDULES = ("flow", "uniavgen")          # sampling.sigmas_for
AUDIO_KINDS = ("mmdit", "mel")
UNIAVGEN_LAYERS = tuple(range(0, 30, 2))  # UniAVGen's hard-coded a2v/v2a_blocks_mapping [0, 2, ..., 28]


@dataclass(frozen=True)
class VideoConfig:
    """Wan2.2 DiT hyper-parameters (names as in `WanModel.__init__`)."""

    in_dim: int = 48
    out_dim: int = 48
    dim: int = 3072
    ffn_dim: int = 14336
    freq_dim: int = 256
    text_dim: int = 4096          # umT5-XXL width
    text_len: int = 512           # contexts are zero-padded to this many rows, as Wan does
    num_heads: int = 24
    num_layers: int = 30
    patch_size: tuple[int, int, int] = (1, 2, 2)
    qk_norm: bool = True
    cross_attn_norm: bool = True
    eps: float = 1e-6
    rope_max_len: int = 1024      # positions per RoPE axis
    ref_frame: bool = False       # UniAVGen layout: `Conditioning.ref_image` is prepended as a clean latent frame
    #                               (t = 0, RoPE temporal position 0, never output): the sequence has F + 1 frames

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


@dataclass(frozen=True)
class AudioConfig:
    """The audio tower. `kind` picks it:

    "mmdit" (Harmony): an MM-DiT over audio-VAE latents. Paper-silent; defaults follow UniAVGen's audio branch
    (dim 1536, ffn 8960, 12 heads of 128, 30 layers: one block per video block so the interaction pairs them 1:1).

    Transcript path (F5-TTS style): UTF-8 bytes of the transcript (ids 0..255; 256 is the filler id that
    pads batches and fills the sequence to the audio length) -> embedding -> ConvNeXt-V2 blocks; the sequence is padded with the filler id (or
    truncated, with a log note) to the target audio length and the result is projected to `dim` and
    ADDED to the target audio tokens (UniAVGen's Linear(512 -> audio dim) choice; the reference-audio
    tokens receive no transcript). Bytes rather than a pinyin vocabulary keep it language agnostic.

    "mel" (UniAVGen, `model/uniavgen_audio.py`): Wan-block DiT (Wan's WanAttentionBlock, `cross_attn_norm`)
    over normalised 80-bin mel frames, in_dim = out_dim = 80 channels of the [B, C, T] audio latent, one token
    per frame, 1-D RoPE over [reference mel ; target mel]. ONE timestep per sample. The transcript (vocabulary
    line ids, -1 filler, `model/transcript_ids.py`) goes through F5-TTS's TextEmbedding (`transcript_vocab` =
    2545 + the filler, `transcript_dim`, `transcript_conv_layers` ConvNeXt-V2 blocks) and a bias-free
    Linear to `dim`, and is the K/V of each block's cross-attention, with 1-D RoPE on q and k. There is
    no audio caption: `text_dim` / `text_len` are unused.
    """

    kind: str = "mmdit"
    in_dim: int = 20              # MMAudio 16k latent channels
    out_dim: int = 20
    dim: int = 1536
    ffn_dim: int = 8960
    freq_dim: int = 256
    text_dim: int = 4096          # audio caption from the same umT5 as the video caption
    text_len: int = 512
    num_heads: int = 12
    num_layers: int = 30
    transcript_dim: int = 512
    transcript_conv_layers: int = 4
    transcript_vocab: int = 257   # 256 byte values + the filler id 256
    qk_norm: bool = True
    cross_attn_norm: bool = True  # "mel": affine LayerNorm before the transcript cross-attention (Wan's norm3)
    eps: float = 1e-6
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


@dataclass(frozen=True)
class InteractionConfig:
    """Global-Local Decoupled Interaction (paper §3.3). Paper-silent values are ours:

    kind: "gldi" (local frame-wise A2V + V2A, global style alignment), "global" (Ovi-style full
      cross-attention both ways: the paper's ablation baseline), "none" (towers do not talk).
    layers: which block indices interact (None: every layer, as the paper says "at each layer").
    a2v_margin: audio context of video latent frame i = audio latents overlapping
      [i - margin, i + 1 + margin) on the video timeline (0.5 -> ~2 latent frames of audio, ~10 MMAudio
      latents at 25 fps).
    v2a_margin: audio latent j attends to the video frame holding its centre and `margin` frames either side.
    rope_align: rescale source positions onto the target timeline before RoPE (j -> j*Tv/Ta); False = raw
      indices (the paper's "RoPE align" ablation).
    global_style: the reference-audio tokens query the whole video (paper Eq. 7).

    kind "uniavgen" (UniAVGen's released interaction, `model/uniavgen_interaction.py`), on `layers`
    (released: 0, 2, ..., 28), after both blocks of the layer, from the same post-block states:
    a2v_window: A2V window in pixel frames (the reference's `window_size=5`: the latent frame's pixel frames
      +- 2): each latent frame attends to its gathered audio window, edge-duplicated to one length (51 tokens
      at 506 mel frames / 21 latent frames); window-relative temporal RoPE on k, spatial RoPE on q.
    face_mask: A2V predicts a sigmoid face mask per video token that gates its output and the video states
      V2A reads (interpolated per audio token between neighbouring pixel frames).
    The margins, rope_align and global_style do not apply to it.
    """

    kind: str = "gldi"
    layers: tuple[int, ...] | None = None
    a2v_margin: float = 0.5
    v2a_margin: int = 1
    rope_align: bool = True
    global_style: bool = True
    rope_theta: float = 10000.0
    a2v_window: int = 5
    face_mask: bool = True


@dataclass(frozen=True)
class TextEncoderConfig:
    """The demo model's own caption encoder (`model/text_encoder.py`); real models use umT5."""

    buckets: int = 4096
    dim: int = 64          # must equal the towers' text_dim
    max_len: int = 24
    layers: int = 1
    heads: int = 4


SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed takes -2**63..2**64-1 (negative s aliases s + 2**64)
MAX_TAKES = 20  # takes generated one after another and ranked by sync (CLI --takes, HarmonyBestOfTakes)


@dataclass(frozen=True)
class GenerationDefaults:
    """What a checkpoint generates unless told otherwise (stored with it). Guidance defaults are the
    paper's (SyncCFG s_v = 3, s_a = 2, 40 steps, shift 5); small models may carry their own."""

    fps: str = "25"               # exact rational as text, e.g. "30000/1001"
    width: int = 1248
    height: int = 704
    num_frames: int = 109         # 4k + 1
    steps: int = 40
    shift: float = 5.0
    solver: str = "euler"
    sync_video_scale: float = 3.0
    sync_audio_scale: float = 2.0
    text_video_scale: float = 1.0
    text_audio_scale: float = 1.0
    driven_sync_video_scale: float | None = None  # audio-driven mode's SyncCFG video scale (None: sync_video_scale)
    driven_sync_audio_scale: float | None = None  # video-driven mode's SyncCFG audio scale (None: sync_audio_scale)
    rescale_video: float = 0.0      # CFG-rescale mix factor phi per modality, in [0, 1] (sampling.Rescale,
    rescale_audio: float = 0.0      # arXiv 2305.08891): 0 = off, so checkpoints written before it are unchanged
    driven_rescale_video: float | None = None  # audio-driven mode's video rescale (None: rescale_video)
    driven_rescale_audio: float | None = None  # video-driven mode's audio rescale (None: rescale_audio)
    guidance: str = "synccfg"       # "synccfg" (Harmony's) or "uniavgen" (MA-CFG + skip-layer guidance, scales
    #                                 = text_*_scale); sampling.guidance.GUIDANCE_KINDS
    schedule: str = "flow"          # "flow" (shifted linspace(1, 0)) or "uniavgen" (its shifted Wan timesteps)
    macfg_skip_blocks: tuple[int, ...] = (11,)   # UniAVGen guidance: blocks its negative pass skips
    max_frames: int | None = None   # the longest clip the model was trained on (None: the 60 s limit only)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationDefaults:
        """Reads checkpoints written before the knobs got one name each (`sync_video` -> `sync_video_scale`)."""
        renamed = {k + "_scale" if k in _LEGACY_DEFAULTS else k: v for k, v in d.items()}
        return _sub(cls, renamed)


PREDICTIONS = ("velocity", "x0")
_LEGACY_DEFAULTS = ("sync_video", "sync_audio", "text_video", "text_audio", "driven_sync_video", "driven_sync_audio")


@dataclass(frozen=True)
class HarmonyConfig:
    name: str = "custom"
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    interaction: InteractionConfig = field(default_factory=InteractionConfig)
    codecs: dict[str, Any] = field(default_factory=dict)  # names/configs of the codecs the model was trained with
    text_encoder: TextEncoderConfig | None = None          # own caption encoder (demo); None: umT5 from outside
    defaults: GenerationDefaults = field(default_factory=GenerationDefaults)
    prediction: str = "velocity"   # what the towers output: "velocity" (Wan, UniAVGen) or "x0" (the demo)
    frame_noise_share: float = 0.0  # share of the video noise common to all latent frames (sampling/noise.py)

    def validate(self) -> HarmonyConfig:
        v, a, i = self.video, self.audio, self.interaction
        _check(self.prediction in PREDICTIONS, f"prediction {self.prediction!r} is not one of {PREDICTIONS}")
        _check(0.0 <= self.frame_noise_share < 1.0,
               f"frame_noise_share must lie in [0, 1), got {self.frame_noise_share}")
        _check(v.dim % v.num_heads == 0, f"video dim {v.dim} is not divisible by num_heads {v.num_heads}")
        _check(v.head_dim % 2 == 0, f"video head_dim {v.head_dim} must be even for RoPE")
        _check(a.dim % a.num_heads == 0, f"audio dim {a.dim} is not divisible by num_heads {a.num_heads}")
        _check(a.head_dim % 2 == 0, f"audio head_dim {a.head_dim} must be even for RoPE")
        _check(a.num_layers == v.num_layers,
               f"audio tower depth {a.num_layers} must equal the video tower's {v.num_layers} (blocks pair 1:1)")
        _check(i.kind in INTERACTION_KINDS, f"interaction.kind {i.kind!r} is not one of {INTERACTION_KINDS}")
        _check(i.a2v_margin >= 0 and i.v2a_margin >= 0, "interaction margins must be >= 0")
        _check(a.kind in AUDIO_KINDS, f"audio.kind {a.kind!r} is not one of {AUDIO_KINDS}")
        _check_uniavgen(self)
        if self.text_encoder is not None:
            _check(self.text_encoder.dim == v.text_dim == a.text_dim,
                   f"text encoder width {self.text_encoder.dim} must equal both towers' text_dim "
                   f"({v.text_dim}, {a.text_dim})")
        for layer in i.layers or ():
            _check(0 <= layer < v.num_layers, f"interaction layer {layer} outside 0..{v.num_layers - 1}")
        return self

    def interacting_layers(self) -> tuple[int, ...]:
        if self.interaction.kind == "none":
            return ()
        return tuple(self.interaction.layers) if self.interaction.layers is not None else tuple(
            range(self.video.num_layers))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HarmonyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        _check(not unknown, f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(
            name=d.get("name", "custom"),
            video=_sub(VideoConfig, d.get("video", {})),
            audio=_sub(AudioConfig, d.get("audio", {})),
            interaction=_sub(InteractionConfig, d.get("interaction", {})),
            codecs=dict(d.get("codecs", {})),
            text_encoder=None if d.get("text_encoder") is None else _sub(TextEncoderConfig, d["text_encoder"]),
            defaults=GenerationDefaults.from_dict(d.get("defaults", {})),
            prediction=d.get("prediction", "velocity"),
            frame_noise_share=float(d.get("frame_noise_share", 0.0)),
        ).validate()

    @classmethod
    def from_json(cls, s: str) -> HarmonyConfig:
        return cls.from_dict(json.loads(s))

    def replace(self, **changes: Any) -> HarmonyConfig:
        """Copy with top-level or dotted changes, e.g. replace(**{"interaction.kind": "global"})."""
        d = self.to_dict()
        for key, value in changes.items():
            node = d
            *path, leaf = key.split(".")
            for p in path:
                node = node[p]
            _check(isinstance(node, dict) and leaf in node, f"unknown config field {key!r}")
            node[leaf] = value
        return HarmonyConfig.from_dict(d)


def _check_uniavgen(cfg: HarmonyConfig) -> None:
    """The UniAVGen parts only come together: mel tower, reference frame, and equal head dims."""
    v, a, i = cfg.video, cfg.audio, cfg.interaction
    if i.kind == "uniavgen":
        _check(a.kind == "mel" and v.ref_frame,
               "interaction.kind 'uniavgen' needs audio.kind 'mel' and video.ref_frame (UniAVGen's layout)")
        _check(v.head_dim == a.head_dim,
               f"interaction.kind 'uniavgen' needs equal head dims (video {v.head_dim}, audio {a.head_dim}): "
               "its A2V keys use the audio RoPE table split with the video head dim")
        _check(i.a2v_window >= 1, "interaction.a2v_window must be >= 1 pixel frame")
    else:
        _check(a.kind == "mmdit" or i.kind == "none",
               f"audio.kind {a.kind!r} runs with interaction.kind 'uniavgen' or 'none', not {i.kind!r}")
        _check(not v.ref_frame or i.kind == "none",
               f"video.ref_frame runs with interaction.kind 'uniavgen' or 'none', not {i.kind!r}")


def _sub(cls: type, d: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(known)
    _check(not unknown, f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------

def _harmony_5b() -> HarmonyConfig:
    return HarmonyConfig(name="harmony-5b", codecs={"video": "wan2.2-vae", "audio": "mmaudio-16k"})


def _tiny() -> HarmonyConfig:
    """A forward well under a second on one CPU core: for tests."""
    return HarmonyConfig(
        name="tiny",
        video=VideoConfig(dim=64, ffn_dim=128, freq_dim=32, text_dim=32, text_len=16, num_heads=4, num_layers=2),
        audio=AudioConfig(dim=64, ffn_dim=128, freq_dim=32, text_dim=32, text_len=16, num_heads=4, num_layers=2,
                          transcript_dim=32, transcript_conv_layers=1),
        codecs={"video": "wan2.2-vae", "audio": "mmaudio-16k"},
    )


# Std of each of the demo video codec's 24 latent channels (keyframe basis) over 200 clips of the synthetic
# stream 4242 (all five scene kinds); the codec divides by it so every channel has unit variance. The audio
# codec's log-mel mean / std (0.13 / 1.33) come from the same clips.
DEMO_VIDEO_CHANNEL_STD = (1.59, 2.28, 2.73, 0.645, 0.331, 1.27, 3.52, 2.65, 5.52, 1.15, 1.25, 0.584, 0.694, 0.99,
                          2.0, 0.569, 0.37, 1.78, 3.26, 2.64, 4.04, 5.54, 1.66, 1.41)


def _demo() -> HarmonyConfig:
    """The bundled demo model (v2): GLDI + Cross-Task Synergy on the five synthetic scene kinds, demo codecs,
    64x64 at 25 fps, 16 kHz. Video latent 24 x 8 x 8 per latent frame, 2x2 patches -> 16 tokens of 96 values
    per latent frame.

    Video codec: the "keyframe" temporal basis (latents interpolate between keyframes, so latents that
    disagree decode into ramps, not a jump every 4th frame) with 24 channels: on the v2 scenes' large objects
    a codec round trip gains 1.0-1.6 dB PSNR over 18 channels and draws a triangle's apex (25.8 -> 26.8 dB;
    32 channels 28.0 dB). Each channel is divided by its std on training data (DEMO_VIDEO_CHANNEL_STD):
    without it the chroma DC channels had std 0.33-0.65 against 5.5 for some luma ones, and their residual
    noise decoded as coloured 8x8 tiles. Guidance defaults come from the sweep in docs/demo_model.md.

    The towers predict the clean latents (`prediction="x0"`, trained with the same velocity loss): against
    the same recipe predicting the velocity, a one-step denoise of still clips from sigma 0.18 left 0.0053
    instead of 0.0084 frame-to-frame change at step 1000, and the shipped model recovers the prompt's scene
    family in 88 % of clips instead of 68 % (docs/demo_model.md).

    Trained with two loss settings (`train --sigma-floor 0.15 --temporal-weight 2`): the video error's
    frame-to-frame change is charged twice over, and rows below the sampler's last noise level stop
    dominating the clipped gradient. The driven tasks are given plainer renderings of the same events half
    the time (`train --cond-variety 0.5`: landings without flash, bare lamps, free-pitch beeps, voices without
    formants or consonant bursts; synthetic_variety.py). Joint SyncCFG is off by default (1 / 1): on the
    model before this one it lowered joint sync (paired, -0.035 on the evaluation prompts), on this one
    -0.025 on the sweep stream (n.s.); the driven modes keep theirs.
    """
    return HarmonyConfig(
        name="demo",
        video=VideoConfig(in_dim=24, out_dim=24, dim=128, ffn_dim=384, freq_dim=64, text_dim=64, text_len=24,
                          num_heads=4, num_layers=4),
        audio=AudioConfig(in_dim=64, out_dim=64, dim=128, ffn_dim=384, freq_dim=64, text_dim=64, text_len=24,
                          num_heads=4, num_layers=4, transcript_dim=64, transcript_conv_layers=1),
        interaction=InteractionConfig(a2v_margin=0.5, v2a_margin=1),
        codecs={"video": {"name": "demo_video", "latent_channels": 24, "temporal": "keyframe",
                          "channel_std": list(DEMO_VIDEO_CHANNEL_STD)},
                "audio": {"name": "demo_audio", "n_mels": 32, "griffin_lim_iters": 64,
                          "log_mel_mean": 0.13, "log_mel_std": 1.33}},
        text_encoder=TextEncoderConfig(buckets=2048, dim=64, max_len=24, layers=1, heads=4),
        defaults=GenerationDefaults(fps="25", width=64, height=64, num_frames=81, steps=24, shift=5.0,
                                    sync_video_scale=1.0, sync_audio_scale=1.0, rescale_video=0.7, rescale_audio=1.0,
                                    driven_sync_video_scale=2.0, driven_sync_audio_scale=3.0,
                                    driven_rescale_video=0.7, driven_rescale_audio=0.0),
        prediction="x0",
    )


def _uniavgen() -> HarmonyConfig:
    """UniAVGen (MCG-NJU, HF MCG-NJU/UniAVGen) at full size: Wan2.2-TI2V-5B video tower with the reference
    frame prepended, Wan-1.3B-shaped mel tower, F5 transcript cross-attention, 15+15 interaction modules on
    layers 0, 2, ..., 28. 7,056,424,223 parameters (2036 tensors). Defaults: the released inference (16 fps,
    81 frames, 50 Euler steps, shift 5, s_v = 3, s_a = 2; resolution follows the reference image, short side 736)."""
    return HarmonyConfig(
        name="uniavgen",
        video=VideoConfig(ref_frame=True),
        audio=AudioConfig(kind="mel", in_dim=80, out_dim=80, dim=1536, ffn_dim=8960, freq_dim=256,
                          num_heads=12, num_layers=30, transcript_dim=512, transcript_conv_layers=4,
                          transcript_vocab=2546),
        interaction=InteractionConfig(kind="uniavgen", layers=UNIAVGEN_LAYERS, global_style=False),
        codecs={"video": "wan2.2-vae", "audio": "uniavgen-24k"},
        defaults=GenerationDefaults(fps="16", width=1312, height=736, num_frames=81, steps=50, shift=5.0,
                                    solver="euler", sync_video_scale=3.0, sync_audio_scale=2.0,
                                    text_video_scale=3.0, text_audio_scale=2.0, guidance="uniavgen",
                                    schedule="uniavgen", macfg_skip_blocks=(11,), max_frames=81),
    )


def _uniavgen_tiny() -> HarmonyConfig:
    """UniAVGen's structure at the parity fixture's sizes (shared/parity/uniavgen_joint): transcript width 32,
    interaction on layers 0 and 2 of 4 (the reference's map cut to the depth). For tests."""
    full = _uniavgen()
    return dataclasses.replace(
        full, name="uniavgen-tiny",
        video=VideoConfig(dim=96, ffn_dim=256, freq_dim=32, text_dim=32, text_len=16, num_heads=3, num_layers=4,
                          ref_frame=True),
        audio=dataclasses.replace(full.audio, dim=64, ffn_dim=160, freq_dim=32, num_heads=2, num_layers=4,
                                  transcript_dim=32),
        interaction=dataclasses.replace(full.interaction, layers=(0, 2)),
        defaults=GenerationDefaults(fps="16", width=128, height=96, num_frames=21, steps=4, shift=5.0,
                                    sync_video_scale=3.0, sync_audio_scale=2.0, text_video_scale=3.0,
                                    text_audio_scale=2.0, guidance="uniavgen", schedule="uniavgen",
                                    macfg_skip_blocks=(1,), max_frames=81),
    )


PRESETS = {"harmony-5b": _harmony_5b, "tiny": _tiny, "demo": _demo, "uniavgen": _uniavgen,
           "uniavgen-tiny": _uniavgen_tiny}


def preset(name: str) -> HarmonyConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name]().validate()
