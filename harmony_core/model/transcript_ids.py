"""UniAVGen transcript ids, built exactly as the reference builds them (`inference.py`, `utils/eval_dataset.py`
of github.com/MCG-NJU/Sora2-mini @ 6d9a41b):

- the vocabulary is `assets/uniavgen_vocab.txt` (2545 lines, F5-TTS's zh/en pinyin list), read in text mode
  so CRLF line ends become "\\n", each line minus its last character being the token, its line index the id;
- English (and any text given as "en") is split into characters; Chinese ("zh") is segmented with jieba and
  converted to tone-numbered pinyin with pypinyin (optional packages: `pip install jieba pypinyin`);
- an unknown token maps to id 0 (which is also the space's id); the ids are padded with -1 (the filler)
  to at least 10, and the length the model attends to is the padded length;
- with a reference voice (RAVG) the transcript is `ref + " " + text`; the negative transcript is `[""]`
  (one unknown token: id 0, then 9 fillers), or with a reference voice `ref + " "` (zh: ref + the token "").
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

VOCAB_PATH = Path(__file__).resolve().parents[1] / "assets" / "uniavgen_vocab.txt"
FILLER = -1
MIN_LENGTH = 10
UNKNOWN = 0
LANGUAGES = ("en", "zh")
_PUNCTUATION = str.maketrans({";": ",", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True)
class TranscriptIds:
    """ids [B, L] long (-1 filler) and lens [B] long: what `Conditioning.transcript` / `transcript_lens` take."""

    ids: torch.Tensor
    lens: torch.Tensor


@functools.lru_cache(maxsize=4)
def load_vocab(path: str | Path = VOCAB_PATH) -> dict[str, int]:
    """token -> id, read as the reference reads it (text mode, last character of each line dropped)."""
    with open(path, encoding="utf-8") as f:
        return {line[:-1]: i for i, line in enumerate(f)}


def tokens(text: str, lang: str = "en") -> list[str]:
    """The reference's token list of one transcript: characters ("en") or pinyin syllables and characters ("zh")."""
    if lang not in LANGUAGES:
        raise ValueError(f"transcript language {lang!r} is not one of {LANGUAGES}: UniAVGen was trained on English "
                         "and Chinese; 'en' passes any text through as characters")
    if lang == "zh" and text:
        return pinyin_tokens(text)
    return list(text)


def _chinese_tools() -> tuple[object, object, object]:
    try:
        import jieba
        from pypinyin import Style, lazy_pinyin
    except ImportError as exc:
        raise ImportError(f"Chinese transcripts are converted to pinyin with jieba and pypinyin, as UniAVGen does; "
                          f"install them (pip install jieba pypinyin) or pass English text ({exc})") from exc
    return jieba, lazy_pinyin, Style.TONE3


def _is_cjk(c: str) -> bool:
    return "\u3100" <= c <= "\u9fff"


def pinyin_tokens(text: str) -> list[str]:
    """Chinese text -> tokens: jieba segments; ASCII segments as characters (a space before a multi-character
    one), all-CJK segments as tone-numbered pinyin with tone sandhi (a space before each syllable), mixed
    segments character by character (the reference's `convert_char_to_pinyin`)."""
    jieba, lazy_pinyin, tone3 = _chinese_tools()
    if not jieba.dt.initialized:
        jieba.default_logger.setLevel(50)
        jieba.initialize()

    def syllables(s: str) -> list[str]:
        return lazy_pinyin(s, style=tone3, tone_sandhi=True)

    out: list[str] = []
    for seg in jieba.cut(text.translate(_PUNCTUATION)):
        size = len(seg.encode("utf-8"))
        if size == len(seg):                         # ASCII letters, digits and symbols
            if out and size > 1 and out[-1] not in " :'\"":
                out.append(" ")
            out.extend(seg)
        elif size == 3 * len(seg):                   # three-byte characters only
            said = syllables(seg)
            for i, c in enumerate(seg):
                if _is_cjk(c):
                    out.append(" ")
                out.append(said[i])
        else:                                        # mixed
            for c in seg:
                if ord(c) < 256:
                    out.append(c)
                elif _is_cjk(c):
                    out.extend([" ", *syllables(c)])
                else:
                    out.append(c)
    return out


def token_ids(toks: list[str]) -> list[int]:
    vocab = load_vocab()
    return [vocab.get(t, UNKNOWN) for t in toks]


def batch_ids(rows: list[list[int]]) -> TranscriptIds:
    """Rows of ids -> each padded with -1 to >= 10 (its length), then to the longest row (batch padding)."""
    lens = [max(len(r), MIN_LENGTH) for r in rows]
    ids = torch.full((len(rows), max(lens)), FILLER, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return TranscriptIds(ids, torch.tensor(lens, dtype=torch.long))


def _with_reference(text: str, lang: str, ref_text: str | None) -> list[str]:
    if not ref_text:
        return tokens(text, lang)
    return tokens(ref_text, lang) + [" "] + tokens(text, lang)


def transcript_ids(texts: list[str], lang: str = "en", ref_texts: list[str | None] | None = None) -> TranscriptIds:
    """Positive transcripts (with their reference voice's transcript when one is given: RAVG)."""
    refs = ref_texts or [None] * len(texts)
    return batch_ids([token_ids(_with_reference(t, lang, r)) for t, r in zip(texts, refs, strict=True)])


def negative_transcript_ids(batch: int = 1, lang: str = "en", ref_texts: list[str | None] | None = None,
                            ) -> TranscriptIds:
    """The unconditional transcripts: `[""]` (id 0, then fillers), or `ref + " "` with a reference voice."""
    refs = ref_texts or [None] * batch

    def negative(ref: str | None) -> list[str]:
        if not ref:
            return [""]
        return tokens(ref, lang) + ([" "] if lang == "en" else [""])
    return batch_ids([token_ids(negative(r)) for r in refs])
