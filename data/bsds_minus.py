"""CBSD432: BSDS500's colour photos minus the 68 of CBSD68, which are the same photos stored as BMP under other
names: matched by their pixels (a mean difference under 2 levels, both ways up), not by name.

    python data/bsds_minus.py BSDS500/data/images data/CBSD68 data/CBSD432
"""
import glob
import os
import shutil
import sys

import cv2
import numpy as np


def thumbnail(img):
    """32x48 float thumbnail of a landscape view (portrait photos turned), so that the two copies compare."""
    if img.shape[0] > img.shape[1]:
        img = np.rot90(img)
    return cv2.resize(img, (48, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def bsds_minus(bsds_images, cbsd68, out, tolerance=2.0):
    """Copy every BSDS500 JPEG that is not one of CBSD68's photos into out; returns (kept, left out)."""
    taken = [thumbnail(cv2.imread(f)) for f in sorted(glob.glob(os.path.join(cbsd68, "*")))]
    os.makedirs(out, exist_ok=True)
    kept = dropped = 0
    for f in sorted(glob.glob(os.path.join(bsds_images, "*", "*.jpg"))):
        small = thumbnail(cv2.imread(f))
        if any(np.abs(small - t).mean() < tolerance for t in taken):
            dropped += 1
            continue
        shutil.copy(f, os.path.join(out, os.path.basename(f)))
        kept += 1
    return kept, dropped


if __name__ == "__main__":
    kept, dropped = bsds_minus(*sys.argv[1:4])
    print("  %s: %d images (%d left out: CBSD68's)" % (sys.argv[3], kept, dropped))
    if dropped != 68:
        print("warning: expected to leave out 68 photos, left out %d" % dropped, file=sys.stderr)
