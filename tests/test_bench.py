"""bench.py's cheap sections run at toy sizes and print full tables (timings are never asserted)."""
import os
import re

import cv2

from conftest import make_image, run_script

SECTIONS = ("ceiling", "models", "malloc", "fusion", "eval", "preprocess")


def tables(stdout):
    """{section title: [rows, each a list of cells]} from bench.py's markdown output."""
    found, title = {}, None
    for line in stdout.splitlines():
        if line.startswith("## "):
            title = line[3:]
            found[title] = []
        elif title and line.startswith("|") and not line.startswith("|---"):
            found[title].append([cell.strip() for cell in line.strip("|").split("|")])
    return found


def test_cheap_sections_print_a_full_row_per_model(tmp_path):
    for folder in ("train", "Set12", "Set68"):  # small Set68 images: eval times these, not BSD68-sized ones
        os.makedirs(tmp_path / folder)
        for i in range(2):
            cv2.imwrite(str(tmp_path / folder / ("%d.png" % i)), make_image((60, 60), i))
    out = run_script("bench.py", "--only", *SECTIONS, "--data", str(tmp_path), "--archs", "DnCNN", "ADNet",
                     "--batch", "2", "--steps", "2", "--rounds", "1", "--images", "1", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    found = tables(out.stdout)
    titles = {name: [t for t in found if t.lower().startswith(prefix)] for name, prefix in
              (("ceiling", "this machine's ceiling"), ("models", "models"), ("malloc", "host memory"),
               ("fusion", "what fusing"), ("eval", "inference"), ("preprocess", "preprocessing"))}
    assert all(len(t) == 1 for t in titles.values()), (titles, out.stdout)
    number = re.compile(r"^-?[\d,]+(\.\d+)?(x|%)?$")
    for name in ("models", "malloc", "fusion", "eval"):
        header, *rows = found[titles[name][0]]
        assert [row[0] for row in rows] == ["DnCNN", "ADNet"], (name, rows)
        for row in rows:
            assert len(row) == len(header), (name, header, row)
            assert all(number.match(cell) or cell == "(no fast bf16)" for cell in row[1:]), (name, row)
    header, *rows = found[titles["ceiling"][0]]
    assert rows and all(len(row) == 3 and float(row[1]) > 0 and float(row[2]) > 0 for row in rows), rows
    header, *rows = found[titles["preprocess"][0]]
    assert [row[0] for row in rows] == ["reference-style", "this port"], rows
    assert re.search(r"speed-up [\d.]+x", out.stdout), out.stdout[-500:]


def test_variants_section_prints_dncnn3_and_fdncnn_beside_dncnn20(tmp_path):
    os.makedirs(tmp_path / "Set68")
    cv2.imwrite(str(tmp_path / "Set68" / "0.png"), make_image((40, 48), 0))
    out = run_script("bench.py", "--only", "variants", "--data", str(tmp_path), "--rounds", "1", "--images", "1",
                     timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (title, (header, *rows)), = tables(out.stdout).items()
    assert "s per megapixel" in title and [row[0] for row in rows] == ["DnCNN-20", "DnCNN-3", "FDnCNN"]
    assert all(len(row) == len(header) and all(float(cell) > 0 for cell in row[1:]) for row in rows), rows
    assert rows[0][3:] == ["1.000", "1.000"]


def test_photo_floor_is_the_chosen_models_arithmetic_at_this_machines_conv_speed(capsys):
    import numpy as np
    import bench
    from conftest import ROOT
    photo = (np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)
    assert bench.photo_model("auto", photo).channels == 3  # white noise on a colour photo: a colour model
    weights = os.path.join(ROOT, "weights", "CDnCNN-B")
    assert bench.conv_flops_per_pixel(bench.photo_model(weights, photo)) == 2 * 9 * (3 * 64 + 15 * 64 * 64 + 64 * 3)
    bench.print_photo_floor(type("Args", (), {"photo_weights": weights}), photo, megapixels=12.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("arithmetic floor, ") for line in lines), lines
    for line in lines:
        per_mp, gflops, seconds = map(float, re.search(r"([\d.]+) GFLOP per MP at ([\d.]+) GFLOP/s .* = ([\d.]+) s",
                                                       line).groups())
        assert abs(per_mp - 1112.832) < 0.01 and abs(seconds - 12 * per_mp / gflops) <= 0.05 + 0.01 * seconds, line
