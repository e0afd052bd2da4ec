"""Contact sheets: a grid of small frames, upscaled without smoothing, written as an 8-bit RGB PNG.

The PNG writer needs only zlib and struct (no image library): one IHDR (8-bit truecolour), one IDAT with
every scanline prefixed by filter type 0 (none), one IEND, each chunk with its CRC-32 (PNG spec, ISO/IEC
15948 §5.3 and §11.2). The file is written atomically beside its target and never replaces an existing
file unless `overwrite=True` (same commit as `write.write_wav`: a taken name gets the next free
`name_00001.png`).
"""
from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import torch

from .errors import MediaError, check_side
from .write import resolve_target, write_atomically

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_TILES = 4096


def _check_tile(tile: torch.Tensor, i: int) -> None:
    if not isinstance(tile, torch.Tensor) or tile.ndim != 3 or tile.shape[-1] != 3:
        shape = tuple(tile.shape) if isinstance(tile, torch.Tensor) else type(tile).__name__
        raise MediaError(None, f"contact sheet tile {i} has shape {shape}", "tensors [H, W, 3] in [0, 1]")


def contact_sheet(tiles: list[torch.Tensor], columns: int, scale: int = 2, gap: int = 2,
                  background: float = 1.0) -> torch.Tensor:
    """Tiles [H, W, 3] in [0, 1] (all the same size) -> one image [R*(s*H+g)-g, C*(s*W+g)-g, 3] in [0, 1]:
    rows of `columns` tiles, each upscaled `scale` times by pixel repetition (nearest neighbour), `gap`
    pixels of `background` between tiles; a short last row is padded with background."""
    if not tiles or len(tiles) > _MAX_TILES:
        raise MediaError(None, f"a contact sheet needs 1..{_MAX_TILES} tiles, got {len(tiles)}",
                         "a non-empty list of frames")
    if columns < 1 or scale < 1 or gap < 0:
        raise MediaError(None, f"columns={columns}, scale={scale}, gap={gap} are out of range",
                         "columns >= 1, scale >= 1, gap >= 0")
    for i, tile in enumerate(tiles):
        _check_tile(tile, i)
    h, w = tiles[0].shape[:2]
    if any(t.shape != tiles[0].shape for t in tiles):
        sizes = sorted({tuple(t.shape) for t in tiles})
        raise MediaError(None, f"contact sheet tiles differ in size: {sizes}", "tiles of one size")
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    th, tw = scale * h, scale * w
    sheet = torch.full((rows * (th + gap) - gap, columns * (tw + gap) - gap, 3), float(background))
    check_side(None, sheet.shape[0], sheet.shape[1])
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        big = tile.detach().float().cpu().repeat_interleave(scale, 0).repeat_interleave(scale, 1)  # [sH,sW,3]
        sheet[r * (th + gap): r * (th + gap) + th, c * (tw + gap): c * (tw + gap) + tw] = big
    return sheet.clamp_(0.0, 1.0)


def _chunk(kind: bytes, data: bytes) -> bytes:
    """length, type, data, CRC-32 over type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(image: torch.Tensor) -> bytes:
    """Image [H, W, 3] float in [0, 1] -> the bytes of an 8-bit RGB PNG (NaN -> 0, values clamped)."""
    _check_tile(image, 0)
    h, w = image.shape[:2]
    check_side(None, h, w)
    pixels = (image.detach().float().cpu().nan_to_num(0.0).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    rows = torch.cat([torch.zeros(h, 1, dtype=torch.uint8), pixels.reshape(h, w * 3)], dim=1)  # filter 0
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8 bit, truecolour, deflate, filter 0, progressive
    return (PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.numpy().tobytes(), 6)) + _chunk(b"IEND", b""))


def write_png(path: str | Path, image: torch.Tensor, *, overwrite: bool = False,
              name_prefix: str = "sheet") -> Path:
    """Write image [H, W, 3] in [0, 1] as an 8-bit RGB PNG, atomically; returns the path written (a folder
    or a path without suffix gets `<name_prefix>_00001.png`; a taken name the next free number)."""
    target, counted = resolve_target(path, ".png", name_prefix)
    data = png_bytes(image)
    written = write_atomically(target, counted, overwrite, lambda tmp: tmp.write_bytes(data))
    log.info("wrote %s (%dx%d px PNG)", written, image.shape[1], image.shape[0])
    return written
