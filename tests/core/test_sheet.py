"""Contact sheets and the zlib + struct PNG writer (media/sheet.py): layout, nearest-neighbour upscaling, PNG
bytes parsed back by hand (chunk CRCs, IHDR, filter type 0) and by FFmpeg, atomic never-overwriting writes."""
from __future__ import annotations

import struct
import zlib

import av
import pytest
import torch

from harmony_core.media import MediaError, contact_sheet, png_bytes, write_png
from harmony_core.media.sheet import PNG_SIGNATURE


def parse_png(data: bytes) -> tuple[dict, torch.Tensor]:
    """Our own reader for what write_png writes: (IHDR fields, pixels [H, W, 3] uint8). Checks the signature,
    every chunk's CRC-32 and that every scanline uses filter type 0 (none)."""
    assert data[:8] == PNG_SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in chunk {kind!r}")
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"] and chunks[2][1] == b""
    w, h, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    header = {"width": w, "height": h, "depth": depth, "colour": colour, "compression": compression,
              "filter": filtering, "interlace": interlace}
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == h * (1 + 3 * w)
    rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()  # filter type 0: the bytes are the pixels
    return header, rows[:, 1:].reshape(h, w, 3)


def _image(h: int = 13, w: int = 7) -> torch.Tensor:
    return torch.rand(h, w, 3, generator=torch.Generator().manual_seed(3))


def test_png_bytes_round_trip():
    image = _image()
    header, pixels = parse_png(png_bytes(image))
    assert header == {"width": 7, "height": 13, "depth": 8, "colour": 2, "compression": 0, "filter": 0,
                      "interlace": 0}
    assert torch.equal(pixels, (image * 255).round().to(torch.uint8))  # 8 bit: exact after rounding


def test_out_of_range_and_nan_values_are_clamped():
    image = torch.tensor([[[-0.5, 0.5, 2.0], [float("nan"), 1.0, 0.0]]])  # [1, 2, 3]
    _, pixels = parse_png(png_bytes(image))
    assert pixels.tolist() == [[[0, 128, 255], [0, 255, 0]]]


def test_a_flipped_byte_fails_the_crc():
    """Negative control: the reader's CRC check can fail."""
    data = bytearray(png_bytes(_image()))
    data[len(PNG_SIGNATURE) + 8 + 3] ^= 0x01  # a byte of the IHDR body (the width)
    with pytest.raises(ValueError, match="bad CRC"):
        parse_png(bytes(data))


def test_ffmpeg_reads_the_png(tmp_path):
    """An independent decoder (FFmpeg through PyAV) reads the same pixels."""
    image = _image(9, 11)
    path = write_png(tmp_path / "x.png", image)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert torch.equal(torch.from_numpy(frame), (image * 255).round().to(torch.uint8))


def test_contact_sheet_layout():
    """5 tiles of 3 x 4 px in 3 columns, scale 2, gap 2: [2 * 6 + 2, 3 * 8 + 2 * 2, 3]; each tile pixel is a
    2 x 2 block at its place, gaps and the empty sixth cell are background."""
    tiles = [torch.rand(3, 4, 3, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    sheet = contact_sheet(tiles, columns=3, scale=2, gap=2, background=0.25)
    assert sheet.shape == (14, 28, 3)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, 3)
        cell = sheet[r * 8:r * 8 + 6, c * 10:c * 10 + 8]
        assert torch.equal(cell[::2, ::2], tile) and torch.equal(cell[1::2, 1::2], tile)
        assert torch.equal(cell[::2, 1::2], tile) and torch.equal(cell[1::2, ::2], tile)
    assert (sheet[6:8] == 0.25).all() and (sheet[:, 8:10] == 0.25).all() and (sheet[8:, 20:] == 0.25).all()
    assert contact_sheet(tiles[:2], columns=8).shape == (6, 18, 3)  # fewer tiles than columns: one short row


def test_contact_sheet_refuses_bad_tiles():
    with pytest.raises(MediaError, match="differ in size"):
        contact_sheet([torch.zeros(4, 4, 3), torch.zeros(4, 5, 3)], columns=2)
    with pytest.raises(MediaError, match="1..4096 tiles"):
        contact_sheet([], columns=2)
    with pytest.raises(MediaError, match=r"\[H, W, 3\]"):
        contact_sheet([torch.zeros(4, 4)], columns=1)
    with pytest.raises(MediaError, match="columns >= 1"):
        contact_sheet([torch.zeros(4, 4, 3)], columns=0)


def test_write_png_never_overwrites(tmp_path):
    first, second = _image(), 1.0 - _image()
    target = tmp_path / "sub" / "sheet.png"
    assert write_png(target, first) == target
    again = write_png(target, second)
    assert again == tmp_path / "sub" / "sheet_00001.png"
    assert torch.equal(parse_png(target.read_bytes())[1], (first * 255).round().to(torch.uint8))
    assert write_png(target, second, overwrite=True) == target
    assert torch.equal(parse_png(target.read_bytes())[1], (second * 255).round().to(torch.uint8))
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["sheet.png", "sheet_00001.png"]  # no temp


def test_write_png_refuses_another_extension(tmp_path):
    with pytest.raises(MediaError, match=r"\.png"):
        write_png(tmp_path / "sheet.jpg", _image())
    assert list(tmp_path.iterdir()) == []
