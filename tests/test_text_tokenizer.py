"""Text tokenizer: special ids, sentinels, exact round trip (up to lowercasing), save/load."""
import pytest

from modality_tokenizers import load_tokenizer
from modality_tokenizers.text import TextTokenizer

CAPTIONS = [
    "There are 3 objects: a large red cube, a small blue sphere and a green cylinder.",
    "A yellow cone is left of the purple sphere.",
    "Two cubes sit behind a gray capsule; nothing else is in the scene.",
]


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer.fit(CAPTIONS * 5, TextTokenizer.Config(vocab_size=400, max_tokens=40, num_sentinels=10))


def test_special_and_sentinel_ids(tokenizer):
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.sos_id, tokenizer.eos_id) == (0, 1, 2, 3)
    assert tokenizer.sentinel_ids == list(range(4, 14))
    with pytest.raises(ValueError, match="sentinel index 10"):
        tokenizer.sentinel_id(10)


def test_round_trip_is_exact_up_to_lowercase(tokenizer):
    ids = tokenizer.encode(CAPTIONS)
    assert all(row[0] == tokenizer.sos_id and row[-1] == tokenizer.eos_id for row in ids)
    assert tokenizer.decode(ids) == [c.lower() for c in CAPTIONS]
    # Words never seen in training still round-trip: the alphabet covers printable ASCII.
    assert tokenizer.decode([tokenizer.encode_text("a zebra-striped torus, 42!")]) == ["a zebra-striped torus, 42!"]


def test_truncation_keeps_eos(tokenizer):
    (ids,) = tokenizer.encode([" ".join(CAPTIONS * 3)])
    assert len(ids) == 40 and ids[-1] == tokenizer.eos_id


def test_save_load_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert isinstance(loaded, TextTokenizer)
    assert loaded.encode(CAPTIONS) == tokenizer.encode(CAPTIONS)
    assert loaded.config == tokenizer.config


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer config"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"type": "nope", "config": {}}')
    with pytest.raises(ValueError, match="unknown tokenizer type 'nope'"):
        load_tokenizer(tmp_path)


def test_the_shipped_objects_config_makes_each_word_one_token_within_the_registry(tmp_path):
    """Grounded object lists of rendered scenes: every colour, shape, cell word and ';' is one
    token, and the longest list (six objects) fits the modality's max_tokens."""
    from fourm.datasets.scenes.generate import generate_scenes
    from fourm.datasets.scenes.world import COLOR_NAMES
    from fourm.modalities import load_registry
    from train.text_tokenizer import iter_texts, train_text_tokenizer

    generate_scenes(tmp_path / "scenes", n=40, n_val=1, resolution=16, seed=0, progress=False)
    report = train_text_tokenizer("configs/tokenizers/text_objects.yaml",
                                  [f"data.train={tmp_path / 'scenes' / 'train'}", f"out={tmp_path / 'tok'}"])
    spec = load_registry(["objects"])["objects"]
    tokenizer = TextTokenizer.from_pretrained(tmp_path / "tok")
    assert report["round_trip_exact"] == 1.0 and tokenizer.vocab_size <= spec.vocab_size
    words = sorted({w for t in iter_texts(str(tmp_path / "scenes" / "train"), "objects") for w in t.replace(";", " ").split()})
    assert len(words) > 20 and {"small", "large", "redcube", "r3", "c3"} <= set(words), words  # sizes, labels, cells
    text = " ".join(words)
    assert len(tokenizer.encode_text(text)) == len(words), [tokenizer.hf.id_to_token(i) for i in tokenizer.encode_text(text)]
    longest = "; ".join(f"large {c}cube r3 c3" for c in COLOR_NAMES[:6])
    assert len(tokenizer.encode_text(longest, add_special=True)) <= spec.max_tokens == tokenizer.max_tokens
