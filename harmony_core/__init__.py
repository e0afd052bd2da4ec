"""Harmony core: a pure-torch library for synchronized audio-video generation (arXiv 2511.21579).

Never imports ComfyUI. See DESIGN.md for the layout.
"""
__version__ = "0.1.0"
