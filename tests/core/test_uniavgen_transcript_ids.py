"""UniAVGen transcript ids, built as the reference builds them: the fixture cases' ids exactly, the vocabulary
asset, padding and batching, and the optional Chinese path."""
from __future__ import annotations

import builtins
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harmony_core.model import transcript_ids as tid
from harmony_core.model.transcript_ids import (
    VOCAB_PATH,
    load_vocab,
    negative_transcript_ids,
    tokens,
    transcript_ids,
)

TEXT = "Over the past week, it rained."
REF = "Selected forms are propagated."


@pytest.mark.parity
@pytest.mark.parametrize("case", ["joint", "a2v", "v2a", "cont"])
def test_uniavgen_fixture_ids(parity_dir, case):
    c = load_file(str(parity_dir / "uniavgen_joint" / f"case_{case}.safetensors"))
    ids, neg = transcript_ids([TEXT]), negative_transcript_ids()
    assert torch.equal(ids.ids, c["text_ids"]) and torch.equal(ids.lens, c["text_lens"])
    assert torch.equal(neg.ids, c["neg_text_ids"]) and torch.equal(neg.lens, c["neg_text_lens"])
    assert not torch.equal(transcript_ids([TEXT.lower()]).ids, c["text_ids"])      # negative control


@pytest.mark.parity
def test_uniavgen_fixture_ids_with_reference_voice(parity_dir):
    c = load_file(str(parity_dir / "uniavgen_joint" / "case_ravg.safetensors"))
    ids, neg = transcript_ids([TEXT], ref_texts=[REF]), negative_transcript_ids(ref_texts=[REF])
    assert ids.ids.shape == (1, 61) and torch.equal(ids.ids, c["text_ids"]) and torch.equal(ids.lens, c["text_lens"])
    assert neg.ids.shape == (1, 31) and torch.equal(neg.ids, c["neg_text_ids"])
    assert torch.equal(neg.lens, c["neg_text_lens"])


def test_uniavgen_vocab_asset():
    vocab = load_vocab()
    assert len(vocab) == 2545 and vocab[" "] == 0 and vocab["!"] == 1 and "" not in vocab
    assert all("\r" not in t and "\n" not in t for t in vocab)          # CRLF read as the reference reads it
    shared = Path(__file__).resolve().parents[3] / "shared" / "reference" / "uniavgen_vocab.txt"
    if shared.is_file():                                                # the reference's copy, when laid beside
        assert VOCAB_PATH.read_bytes() == shared.read_bytes()


def test_uniavgen_padding_and_batching():
    ids = transcript_ids(["Hi", TEXT, ""])
    assert ids.ids.shape == (3, 30) and ids.lens.tolist() == [10, 30, 10]
    assert ids.ids[0, 2:].eq(-1).all() and ids.ids[2].eq(-1).all()      # "" -> no token, all fillers
    assert transcript_ids(["\U0001F600^"]).ids[0, :2].tolist() == [0, 0]      # unknown -> 0
    assert negative_transcript_ids(2).ids.tolist() == [[0] + [-1] * 9] * 2


def test_uniavgen_languages(monkeypatch):
    assert tokens("ab", "en") == ["a", "b"]
    with pytest.raises(ValueError, match="'en', 'zh'"):
        tokens("ab", "fr")
    real_import = builtins.__import__

    def no_jieba(name, *args, **kwargs):
        if name in ("jieba", "pypinyin"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jieba)
    with pytest.raises(ImportError, match="pip install jieba pypinyin"):
        tokens("你好", "zh")
    assert tokens("", "zh") == []


def test_uniavgen_chinese_pinyin():
    pytest.importorskip("jieba")
    pytest.importorskip("pypinyin")
    assert tid.pinyin_tokens("你好") == [" ", "ni2", " ", "hao3"]        # tone sandhi: ni3 hao3 -> ni2 hao3
    assert tid.pinyin_tokens("Hello世界;") == ["H", "e", "l", "l", "o", " ", "shi4", " ", "jie4", ","]
    ids = transcript_ids(["你好"], lang="zh")
    assert ids.ids[0, :4].tolist() == [0, load_vocab()["ni2"], 0, load_vocab()["hao3"]]
