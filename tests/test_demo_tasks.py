"""demo.py --task jpeg / sr: DnCNN-3's other two tasks on a folder of photos."""
import os

import cv2
import numpy as np
import torch

from conftest import make_image, run_script
from degrade import jpeg_roundtrip, matlab_imresize
from models import build_model


def constant_residual_checkpoint(path, value):
    """A 3-layer gray DnCNN-3 stand-in (BN merged, as the authors') whose residual is `value` everywhere."""
    model = build_model("DnCNN", 1, 3, init=None, batch_norm=False)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.dncnn[-1].bias.fill_(value)
    torch.save(model.state_dict(), path)
    return str(path)


def test_jpeg_and_sr_tasks_write_what_dncnn3_gives(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rgb = np.stack([make_image((40, 48), s) for s in (1, 3, 4)], axis=2)
    cv2.imwrite(str(photos / "a.png"), rgb[:, :, ::-1])
    cv2.imwrite(str(photos / "g.jpg"), make_image((40, 48), 2), [cv2.IMWRITE_JPEG_QUALITY, 35])
    weights = constant_residual_checkpoint(tmp_path / "net.pth", 0.0)

    out = run_script("demo.py", "--demo_img_path", str(photos), "--task", "jpeg", "--quality", "25",
                     "--demo_pth_path", weights, "--out", str(tmp_path / "j"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert len([l for l in out.stdout.splitlines() if " PSNR " in l and "(JPEG q25 " in l]) == 2
    got = cv2.imread(str(tmp_path / "j" / "a_deblocked.png"))[:, :, ::-1]
    np.testing.assert_allclose(got, jpeg_roundtrip(rgb, 25), atol=1)  # a zero residual keeps the JPEG
    assert os.path.isfile(tmp_path / "j" / "a_deblocked_compare.png")

    out = run_script("demo.py", "--demo_img_path", str(photos), "--task", "jpeg", "--demo_pth_path", weights,
                     "--out", str(tmp_path / "k"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "g.jpg deblocked (JPEG quality 35)" in out.stdout
    assert "a.png deblocked (not a JPEG file: deblocked as asked)" in out.stdout

    out = run_script("demo.py", "--demo_img_path", str(photos), "--task", "sr", "--scale", "3", "--demo_pth_path",
                     constant_residual_checkpoint(tmp_path / "net2.pth", 0.0), "--out", str(tmp_path / "s"),
                     "--no_compare", "--quiet")
    assert out.returncode == 0, out.stderr
    up = cv2.imread(str(tmp_path / "s" / "g_x3.png"), cv2.IMREAD_UNCHANGED)
    source = cv2.imread(str(photos / "g.jpg"), cv2.IMREAD_UNCHANGED)
    assert up.shape == (120, 144)
    np.testing.assert_allclose(up, np.clip(matlab_imresize(source / 255.0, 3), 0, 1) * 255, atol=0.51)
    assert cv2.imread(str(tmp_path / "s" / "a_x3.png")).shape == (120, 144, 3)


def test_task_errors_are_one_line(tmp_path, capsys):
    import pytest
    import demo
    from utils import UserError
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), make_image((16, 16), 1))
    for args, said in ((["--task", "jpeg", "--test_noiseL", "25"], "--test_noiseL adds Gaussian noise"),
                       (["--task", "sr", "--quality", "20"], "--quality goes with --task jpeg")):
        with pytest.raises(SystemExit):
            demo.parse_args(args)
        assert said in capsys.readouterr().err
    colour = build_model("DnCNN", 3, 3, init=None, batch_norm=False)
    torch.save(colour.state_dict(), tmp_path / "c.pth")
    base = ["--demo_img_path", str(photos), "--out", str(tmp_path / "o"), "--offline"]
    for args, said in ((["--task", "jpeg", "--reference_weights", str(tmp_path / "none")], "needs DnCNN-3"),
                       (["--task", "sr", "--demo_pth_path", str(tmp_path / "c.pth")], "gray or Y channel alone")):
        with pytest.raises(UserError, match=said):
            demo.main(base + args)
