"""The gathered kernels of GLDI's local attention: windows gathered into a batch, never a dense mask.

A2V (`window_attention`): the tokens of video frame g attend to their frame's small window of audio latents
(gathered by the caller, so a window may be rotated per frame). Windows are padded to a multiple of `LANES`
keys (padded keys masked): on a CPU 16 keys run ~1.5x faster than 11, so the padding costs FLOPs but saves
time. On a CPU, inference writes the result over the queries (no fresh video-sized buffer).

V2A (`key_frame_attention`, or `neighbour_frame_attention` on plain grouped queries): audio latents are
grouped by the video frame holding them; group g attends to the tokens of frames g - m .. g + m. The kernel
runs KEY-frame major: key frame f is read once, in place, by the queries of groups f - m .. f + m together
(`query_windows`: (2m + 1) x the group width, ~15 rows at the 5B layout rather than 5, so each key load
serves 3x the rows), giving a partial softmax (row max, sum of exponentials, weighted values) per query and
key frame; each query's 2m + 1 partials are then merged exactly (log-sum-exp). No key or value is copied,
no score is pre-filled, every matmul is dense: 2 per key frame.

`row_scale` / `key_scale` multiply one query's (one key's) scores: the model moves RMSNorm's per-token
factor there instead of normalising every video token (model/interaction.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LANES = 16              # A2V windows are padded to a multiple of this many keys
SMALL_GROUP = 1 << 16   # groups (frames) of at most this many elements (P * H * D) run as one batched call;
#                         larger ones one by one (the per-call overhead is then noise, and no copy is made)


def padded_windows(index: torch.Tensor, valid: torch.Tensor, lanes: int = LANES,
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[G, W] windows -> ([G, W'] index, [G, W'] key mask or None when nothing is padded), W' = W rounded up
    to a multiple of `lanes`; padded slots repeat a valid index and are masked."""
    extra = -index.shape[1] % lanes
    if extra:
        index = torch.cat([index, index[:, -1:].expand(-1, extra)], dim=1)
        valid = torch.cat([valid, valid.new_zeros(valid.shape[0], extra)], dim=1)
    return index, None if bool(valid.all()) else valid


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None,
                     overwrite: bool = False, row_scale: torch.Tensor | None = None) -> torch.Tensor:
    """q [N, G, P, H, D] (P queries of group g); k, v [N, G, W, H, D] (each group's gathered window);
    key_mask [G, W] bool (True = attend) or None; row_scale [N, G, P] or None: a factor on each query's
    scores (softmax(s * q.k / sqrt(D))) -> [N, G, P, H, D].

    overwrite=True lets a CPU call with large groups write the result over q (q must be a temporary the
    caller drops, and needs no gradient); group by group, the queries are read before their outputs are
    written. On a CPU a fresh buffer of this size (295 MB at the 5B layout) is new memory the kernel must
    map and zero page by page, which costs more than the attention itself; writing in place skips that."""
    n, g, p, h, d = q.shape
    if overwrite and q.device.type == "cpu" and p * h * d > SMALL_GROUP and not (
            torch.is_grad_enabled() and q.requires_grad):
        return _window_attention_in_place(q, k, v, key_mask, row_scale)
    if row_scale is not None:
        q = q * row_scale[..., None, None].to(q.dtype)
    k, v, w = k.to(q.dtype), v.to(q.dtype), k.shape[2]
    mask = None if key_mask is None else key_mask[None, :, None, None, :].expand(n, -1, -1, -1, -1).flatten(0, 1)
    out = F.scaled_dot_product_attention(q.reshape(n * g, p, h, d).transpose(1, 2),
                                         k.reshape(n * g, w, h, d).transpose(1, 2),
                                         v.reshape(n * g, w, h, d).transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2).reshape(n, g, p, h, d)


def _window_attention_in_place(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None,
                               row_scale: torch.Tensor | None) -> torch.Tensor:
    """`window_attention` group by group, each group's output written over its queries (float32 math)."""
    n, g, p, h, d = q.shape
    kw = (k.float() * d ** -0.5).permute(0, 1, 3, 4, 2).contiguous()                # [N, G, H, D, W]
    vw = v.float().permute(0, 1, 3, 2, 4).contiguous()                               # [N, G, H, W, D]
    bias = None if key_mask is None else torch.zeros(key_mask.shape, device=q.device).masked_fill_(
        ~key_mask, float("-inf"))[:, None, None, :]                                    # [G, 1, 1, W]
    for i in range(n):
        for j in range(g):
            qj = q[i, j].transpose(0, 1)                                               # [H, P, D] (a view)
            s = qj.float() @ kw[i, j]                                                  # [H, P, W]
            if row_scale is not None:
                s.mul_(row_scale[i, j, :, None].float())
            if bias is not None:
                s.add_(bias[j])
            if q.dtype == torch.float32:
                torch.bmm(s.softmax(-1), vw[i, j], out=qj)                            # [H, P, D], in place
            else:
                qj.copy_(s.softmax(-1) @ vw[i, j])
    return q


def key_frame_queries(group_width: int, margin: int) -> int:
    """Query rows per key frame in `neighbour_frame_attention`: the 2m + 1 groups that read it."""
    return (2 * margin + 1) * group_width


def query_windows(q: torch.Tensor, margin: int) -> torch.Tensor:
    """[N, G, Qw, H, D] -> [N, G, H, (2m+1)*Qw, D]: for key frame f, the query groups f - m .. f + m (zero rows
    stand in for groups outside 0..G-1; their results are never read)."""
    n, g, qw, h, d = q.shape
    padded = F.pad(q, (0, 0, 0, 0, 0, 0, margin, margin))                  # [N, G + 2m, Qw, H, D]
    win = padded.unfold(1, 2 * margin + 1, 1)                              # [N, G, Qw, H, D, B]
    return win.permute(0, 1, 3, 5, 2, 4).reshape(n, g, h, -1, d)          # [N, G, H, B*Qw, D]


def _partials(qw: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_scale: torch.Tensor | None,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per key frame: qw [N, G, H, R, D] (float32), k, v [N, G, P, H, D], key_scale [N, G, P] or None ->
    row max and sum of exponentials [N, G, H, R], exp-weighted values [N, G, H, R, D].

    Small frames run as one batched matmul over a head-major copy of the keys; large ones frame by frame,
    reading the keys in place (views), once. Either way the softmax statistics are batched over all frames."""
    n, g, p, h, d = k.shape
    small = p * h * d <= SMALL_GROUP
    if small:
        kc, vc = (t.float().permute(0, 1, 3, 2, 4).contiguous() for t in (k, v))   # [N, G, H, P, D]
        s = qw @ kc.transpose(-1, -2)                                             # [N, G, H, R, P]
    else:
        s = qw.new_empty(*qw.shape[:-1], p)
        for i in range(n):
            for f in range(g):
                torch.matmul(qw[i, f], k[i, f].float().permute(1, 2, 0), out=s[i, f])   # [H, R, P]
    grad = torch.is_grad_enabled()   # in place saves two score-sized buffers; autograd needs the originals
    if key_scale is not None:
        scale = key_scale[:, :, None, None, :].float()
        s = s * scale if grad else s.mul_(scale)
    m = s.amax(-1, keepdim=True)
    e = (s - m if grad else s.sub_(m)).exp_()
    if small:
        return m[..., 0], e.sum(-1), e @ vc
    o = torch.empty_like(qw)
    for i in range(n):
        for f in range(g):
            torch.matmul(e[i, f], v[i, f].float().transpose(0, 1), out=o[i, f])            # [H, R, D]
    return m[..., 0], e.sum(-1), o


def key_frame_attention(windows: torch.Tensor, k: torch.Tensor, v: torch.Tensor, margin: int,
                        key_scale: torch.Tensor | None = None) -> torch.Tensor:
    """windows [N, G, H, (2m+1)*Qw, D]: `query_windows` of the groups' queries, already scaled (1/sqrt(D)
    and anything else a caller folds in, per key frame); k, v [N, G, P, H, D]; key_scale [N, G, P] or
    None: a factor on each key's scores -> [N, G, Qw, H, D] float32, group g attending to frames g - m .. g + m."""
    n, g, h, rows, d = windows.shape
    blocks = 2 * margin + 1
    qw = rows // blocks
    m, l, o = _partials(windows.float(), k, v, key_scale)
    m = m.view(n, g, h, blocks, qw)
    l = l.view(n, g, h, blocks, qw)
    o = o.view(n, g, h, blocks, qw, d)
    # group j's partial from key frame j + off sits in block margin - off of that frame's window; groups
    # whose frame j + off does not exist get an empty partial (max -inf, sums 0)
    def from_offset(t: torch.Tensor, off: int, fill: float) -> torch.Tensor:
        lo, hi = min(g, max(0, -off)), max(0, min(g, g - off))
        if hi <= lo:                                                           # no group has that neighbour
            return t.new_full((n, g, *t.shape[2:3], *t.shape[4:]), fill)
        part = t[:, lo + off:hi + off, :, margin - off]                        # [N, hi - lo, H, Qw, ...]
        pad = [0, 0] * (part.dim() - 2) + [lo, g - hi]
        return F.pad(part, pad, value=fill)                                    # [N, G, H, Qw, ...]
    offsets = range(-margin, margin + 1)
    m = torch.stack([from_offset(m, off, float("-inf")) for off in offsets])   # [O, N, G, H, Qw]
    l = torch.stack([from_offset(l, off, 0.0) for off in offsets])
    o = torch.stack([from_offset(o, off, 0.0) for off in offsets])            # [O, N, G, H, Qw, D]
    w = (m - m.amax(0)).exp()                                                  # exact log-sum-exp merge
    out = (w[..., None] * o).sum(0) / (w * l).sum(0)[..., None]               # [N, G, H, Qw, D]
    return out.permute(0, 1, 3, 2, 4)                                          # [N, G, Qw, H, D]


def neighbour_frame_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, margin: int) -> torch.Tensor:
    """q [N, G, Qw, H, D] (the audio latents of group g); k, v [N, G, P, H, D] (P tokens per frame)
    -> [N, G, Qw, H, D]: each query attends to the tokens of frames g - margin .. g + margin (clipped)."""
    windows = query_windows(q.float() * q.shape[-1] ** -0.5, margin)
    return key_frame_attention(windows, k, v, margin).to(q.dtype)
