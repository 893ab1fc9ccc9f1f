
import numpy as np
import pytest
from PIL import Image

from knockoff.errors import ImageError
from knockoff.catalog.images import iter_image_files, load_image, looks_like_image

from conftest import textured_image


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "CMYK", "L", "1", "I;16", "I", "F"])
def test_modes_become_rgb(tmp_path, mode):
    image = textured_image(5).convert("L" if mode in ("I;16", "I", "F") else "RGB")
    if mode in ("I;16", "I", "F"):
        arr = np.asarray(image).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]) * 200
        image = Image.fromarray(arr, mode=mode) if mode != "I;16" else Image.fromarray(arr.astype(np.uint16))
        path = tmp_path / "img.tiff"
    else:
        image = image.convert(mode)
        path = tmp_path / ("img.tiff" if mode == "CMYK" else "img.png")
    image.save(path)
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    assert loaded.size == (256, 256)


def test_alpha_is_composited_on_white(tmp_path):
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png").getpixel((3, 3)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "o.jpg", exif=exif)
    assert load_image(tmp_path / "o.jpg").size == (20, 40)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "damaged"),
    ],
)
def test_bad_files_name_the_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_truncated_jpeg_is_an_error(tmp_path):
    textured_image(1).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / "cut.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused(tmp_path):
    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="over the limit"):
        load_image(tmp_path / "big.png", max_pixels=10_000)


def test_draft_mode_decodes_large_jpeg_smaller(tmp_path):
    textured_image(2, (1600, 1200)).save(tmp_path / "big.jpg", quality=90)
    small = load_image(tmp_path / "big.jpg", min_side=200)
    assert 200 <= min(small.size) < 1200
    assert load_image(tmp_path / "big.jpg").size == (1600, 1200)


def test_wrong_extension_is_read_by_content(tmp_path):
    textured_image(3).save(tmp_path / "photo.png", format="JPEG")
    assert load_image(tmp_path / "photo.png").size == (256, 256)


def test_folder_walk_by_content_skips_hidden(tmp_path):
    (tmp_path / "sub" / ".hidden").mkdir(parents=True)
    textured_image(1).save(tmp_path / "a.jpg")
    textured_image(2).save(tmp_path / "sub" / "b.png")
    textured_image(3).save(tmp_path / "sub" / "noext", format="PNG")
    textured_image(4).save(tmp_path / "sub" / ".hidden" / "c.png")
    textured_image(5).save(tmp_path / ".dot.png")
    (tmp_path / "notes.txt").write_text("hello")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]
    assert found == ["a.jpg", "sub/b.png", "sub/noext"]
    assert looks_like_image(tmp_path / "sub" / "noext")
    assert not looks_like_image(tmp_path / "notes.txt")
