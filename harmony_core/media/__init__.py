"""Media I/O with PyAV: read audio/video from any FFmpeg-readable file, write mp4 (H.264 + AAC) and wav
atomically, and contact sheets as PNG. Timeline arithmetic (frames <-> seconds <-> samples) lives in
`harmony_core.timeline`."""
from .errors import MAX_SECONDS, MAX_SIDE, MediaError
from .read import MediaInfo, StreamInfo, probe, read_audio, read_video
from .sheet import contact_sheet, png_bytes, write_png
from .write import AAC_RATES, h264_encoder, write_mp4, write_wav

__all__ = [
    "AAC_RATES", "MAX_SECONDS", "MAX_SIDE", "MediaError", "MediaInfo", "StreamInfo", "contact_sheet",
    "h264_encoder", "png_bytes", "probe", "read_audio", "read_video", "write_mp4", "write_png", "write_wav",
]
