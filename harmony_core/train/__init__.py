"""Training: the Cross-Task Synergy trainer and the synthetic audio-visual data it learns from.

- synthetic.py (+ synthetic_audio / synthetic_scenes): clips generated on the fly, deterministic by seed;
- data.py: clips encoded with the model's codecs into training batches (a pure function of seed and step);
- losses.py: the Cross-Task Synergy flow-matching objective (arXiv 2511.21579 §3.2);
- trainer.py: AdamW / EMA / exact resume / DDP under torchrun; checkpoint.py: the training state file;
- ablate.py, ablate_report.py: held-out evaluation and the demo-scale ablation;
- cli.py: `python -m harmony_core train` and `python -m harmony_core ablate`.

Submodules are imported explicitly (nothing heavy happens on `import harmony_core.train`).
"""
