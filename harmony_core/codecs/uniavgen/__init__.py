"""UniAVGen's audio codec: 24 kHz normalised log-mel latent (`mel.py`) and the Qwen2.5-Omni BigVGAN vocoder
(`vocoder.py`) behind the AudioCodec interface (`codec.py`). Heavy modules are imported on use."""
