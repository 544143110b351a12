"""The SIMAT reader: one reader per file, free-form words as in the real release, and clear errors."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tutorlib.formats import FormatError, read_simat, write_image
from tutorlib.world.views import Transformation
from tests.format_samples import read_all_simat, write_small_simat


def write_csv(path, header, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


TRANSFO_HEADER = ["region_id", "field", "value", "target", "query_ids", "target_ids", "norm2", "is_test"]


def write_free_form_release(folder: Path) -> Path:
    """A SIMAT-format folder with the release's free-form relations, words outside the world's vocabulary and no
    scenes."""
    folder.mkdir()
    write_csv(folder / "triplets.csv", ["region_id", "subj", "rel", "obj", "dataset_id"],
              [[501, "man", "sitting on a", "horse", 0], [502, "man", "holding", "umbrella", 1],
               [503, "young woman", "sitting on a", "bench", 2]])
    (folder / "captions.txt").write_text("A man sitting on a horse.\nA man holding an umbrella.\n"
                                         "A young woman sitting on a bench.\nA man sitting on a bench.\n",
                                         encoding="utf-8")
    write_csv(folder / "transfos.csv", TRANSFO_HEADER,
              [[501, "obj", "horse", "bench", 0, 3, 1, "False"],
               [502, "rel", "holding", "sitting on a", 1, 3, 2, "True"],
               [503, "subj", "young woman", "man", 2, 3, 2.5, "True"]])
    images = folder / "images"
    for dataset_id in range(3):
        write_image(images / f"{dataset_id}.png", torch.full((3, 20, 30), 40 * dataset_id, dtype=torch.uint8))
    return folder


@pytest.fixture
def free_form(tmp_path):
    return write_free_form_release(tmp_path / "free_form")


def test_free_form_relations_and_words(free_form):
    data = read_simat(free_form)
    assert data.triplets == [("man", "sitting on a", "horse"), ("man", "holding", "umbrella"),
                             ("young woman", "sitting on a", "bench")]
    assert data.transformations[1] == Transformation(502, "rel", "holding", "sitting on a", 1, 3, 2, True)
    assert data.transformations[2].norm2 == 2.5
    assert data.caption_of(("man", "sitting on a", "horse")) == "A man sitting on a horse."
    assert data.caption_of(("man", "sitting on a", "bench")) == "A man sitting on a bench."
    assert data[2]["image"].shape == (3, 20, 30) and int(data[2]["image"][0, 0, 0]) == 80
    assert data.images.shape == (3, 3, 20, 30)
    assert len(data.split("test")) == 2


def test_one_reader_per_file(free_form):
    from tutorlib.formats.simat import read_captions, read_transformations, read_triplets

    region_ids, dataset_ids, triplets = read_triplets(free_form / "triplets.csv")
    assert region_ids == [501, 502, 503] and dataset_ids == [0, 1, 2] and triplets[1][1] == "holding"
    captions = read_captions(free_form / "captions.txt")
    assert len(captions) == 4 and captions[3] == "A man sitting on a bench."
    rows = read_transformations(free_form / "transfos.csv", region_ids, len(captions))
    assert [r.field for r in rows] == ["obj", "rel", "subj"]
    with pytest.raises(FormatError, match=r"transfos.csv: line 2: query_ids 0 is not a line of captions.txt"):
        read_transformations(free_form / "transfos.csv", region_ids, 0)
    with pytest.raises(FormatError, match=r"transfos.csv: line 2: region_id 501 is not in triplets.csv"):
        read_transformations(free_form / "transfos.csv", [502, 503], len(captions))


def test_empty_words_are_refused(free_form):
    from tutorlib.formats.simat import read_triplets

    write_csv(free_form / "triplets.csv", ["region_id", "subj", "rel", "obj", "dataset_id"],
              [[501, "man", "  ", "horse", 0]])
    with pytest.raises(FormatError, match=r"triplets.csv: line 2: empty rel"):
        read_triplets(free_form / "triplets.csv")


@pytest.mark.parametrize("norm2", ["inf", "nan", "0", "-3", "1e400"])
def test_norm2_must_be_positive_and_finite(free_form, norm2):
    write_csv(free_form / "transfos.csv", TRANSFO_HEADER, [[501, "obj", "horse", "bench", 0, 3, norm2, "False"]])
    with pytest.raises(FormatError, match=r"transfos.csv: line 2: norm2 must be a positive finite number"):
        read_simat(free_form)


def test_a_spreadsheet_byte_order_mark_is_accepted(free_form):
    for name in ("triplets.csv", "transfos.csv", "captions.txt"):
        path = free_form / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    data = read_simat(free_form)
    assert data.region_ids == [501, 502, 503]
    assert data.captions[0] == "A man sitting on a horse."


def test_images_of_another_size_are_refused(free_form):
    write_image(free_form / "images" / "1.png", torch.zeros(3, 20, 31, dtype=torch.uint8))
    data = read_simat(free_form)
    assert data[0]["image"].shape == (3, 20, 30)
    with pytest.raises(FormatError, match=r"images/1.png: image is 31x20 px \(width x height\) where 0.png is "
                                          r"30x20 px"):
        data[1]


def test_scene_errors_name_the_dataset_id(tmp_path):
    folder = write_small_simat(tmp_path)
    text = (folder / "scenes.json").read_text().replace('"depth"', '"deep"', 1)
    (folder / "scenes.json").write_text(text)
    with pytest.raises(FormatError, match=r"scenes.json: dataset_id 0: malformed scene \(KeyError"):
        read_all_simat(folder)
