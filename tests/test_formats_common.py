import pytest

from tutorlib.formats.common import FormatError, atomic_dir, describe_folder, read_image, read_json, write_image


def test_atomic_dir_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "dataset"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "whole.txt").write_text("whole")
    assert (target / "whole.txt").read_text() == "whole"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_dir(target):
            pass


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FormatError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FormatError, match="bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(FormatError, match="bad.png: not a readable image"):
        read_image(tmp_path / "bad.png")


def test_image_round_trip_and_folder_description(tmp_path):
    import numpy as np

    image = (np.arange(3 * 4 * 5) % 256).astype(np.uint8).reshape(3, 4, 5)
    write_image(tmp_path / "images" / "a.png", image)
    assert np.array_equal(read_image(tmp_path / "images" / "a.png"), image.transpose(1, 2, 0))
    for k in range(5):
        (tmp_path / f"f{k}.txt").write_text("x" * k)
    text = describe_folder(tmp_path, per_folder=2)
    assert text.splitlines()[0] == f"{tmp_path.name}/"
    assert "  images/a.png" in text and "  f0.txt  (0 bytes)" in text and "... 3 more files" in text
    with pytest.raises(FormatError, match="not a folder"):
        describe_folder(tmp_path / "f0.txt")


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    import numpy as np
    from PIL import Image

    sixteen = np.array([[0, 257, 32896], [65535, 128, 65407]], dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "grey16.png")
    # v8 = round(v16 * 255 / 65535): 257 -> 1, 32896 -> 128, 128 -> 0.498 -> 0, 65407 -> 254.502 -> 255
    expected = np.array([[0, 1, 128], [255, 0, 255]], dtype=np.uint8)
    image = read_image(tmp_path / "grey16.png")
    assert image.shape == (2, 3, 3) and image.dtype == np.uint8
    assert np.array_equal(image, np.repeat(expected[..., None], 3, axis=2))


def test_images_that_cannot_be_eight_bit_are_refused(tmp_path):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(FormatError, match="float.tiff: floating-point image"):
        read_image(tmp_path / "float.tiff")
    Image.fromarray(np.full((4, 4), 70000, dtype=np.int32)).save(tmp_path / "wide.tiff")
    with pytest.raises(FormatError, match="wide.tiff: I image with values beyond 16 bits"):
        read_image(tmp_path / "wide.tiff")


def test_text_with_a_byte_order_mark_and_folders_in_place_of_files(tmp_path):
    from tutorlib.formats.common import read_text

    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_json(tmp_path / "bom.json") == {"a": 1}
    assert read_text(tmp_path / "bom.json") == '{"a": 1}'
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(FormatError, match="latin.txt: not a UTF-8 text file"):
        read_text(tmp_path / "latin.txt")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(FormatError, match="folder.json: is a folder where a file is expected"):
        read_json(tmp_path / "folder.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FormatError, match="deep.json: not valid JSON"):
        read_json(tmp_path / "deep.json")


def test_size_checks_name_both_files(tmp_path):
    import numpy as np

    from tutorlib.formats.common import check_size, image_size

    write_image(tmp_path / "a.png", np.zeros((3, 5, 7), dtype=np.uint8))
    assert image_size(tmp_path / "a.png") == (5, 7)
    check_size(tmp_path / "b.png", (5, 7, 3), (5, 7), "a.png")
    with pytest.raises(FormatError, match=r"b.png: image is 6x5 px \(width x height\) where a.png is 7x5 px"):
        check_size(tmp_path / "b.png", (5, 6, 3), (5, 7), "a.png")
