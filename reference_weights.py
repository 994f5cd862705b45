"""The authors' published weights on first use: what the per-photo default can use is fetched from the authors'
repositories into weights/reference/ by weights/get_reference_weights.sh (its table holds every URL and sha256),
unless told to stay offline."""
import os
import subprocess

from utils import say

ROOT = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(ROOT, "weights", "get_reference_weights.sh")
OFFLINE_ENV = "DENOISE_OFFLINE"       # 1: never fetch (as --offline)
SOURCE_ENV = "DENOISE_WEIGHTS_FROM"   # another base than https://github.com (a mirror, a file:// copy)
TERMS = ("the DnCNN authors' files (cszn/DnCNN) are for educational and research purposes only, as their "
         "repository says; the ADNet and SaoYan checkpoints as their repositories publish them")


def add_offline_flag(parser):
    parser.add_argument("--offline", action="store_true",
                        help="never fetch the authors' weights on first use (also %s=1); use what is there" % OFFLINE_ENV)


def offline(args=None):
    return bool(getattr(args, "offline", False)) or os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def present(reference_dir, rel):
    """Whether a file (cszn/DnCNN3.mat) or a checkpoint folder (adnet/color/c15) under reference_dir is there."""
    path = os.path.join(reference_dir, rel)
    if os.path.isdir(path):
        return any(f.endswith((".pth", ".mat")) for f in os.listdir(path))
    return os.path.isfile(path)


def glob_of(rel):
    """The script's --only glob for a file or a checkpoint folder."""
    return rel if os.path.splitext(rel)[1] else rel.rstrip("/") + "/*"


def fetch_missing(rels, reference_dir, is_offline=False, source=None):
    """Fetch those of rels (paths under reference_dir, as the script lays them out) that are not there, saying
    so in one line with the files' terms; no network or a bad download: one line, and the weights there are.
    Returns the rels still missing."""
    missing = [rel for rel in rels if not present(reference_dir, rel)]
    if not missing or is_offline:
        return missing
    say("fetching %d published weight files the default uses into %s (once; --offline or %s=1 never "
        "fetches): %s" % (len(missing), reference_dir, OFFLINE_ENV, TERMS))
    command = ["bash", SCRIPT, reference_dir, "--only", ",".join(glob_of(rel) for rel in missing)]
    source = source or os.environ.get(SOURCE_ENV)
    if source:
        command += ["--from", source]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        failed = done.returncode != 0
        reason = errors[-1][len("error: "):] if errors else "exit status %d" % done.returncode
    except (OSError, subprocess.TimeoutExpired) as e:
        failed, reason = True, str(e)
    still = [rel for rel in missing if not present(reference_dir, rel)]
    if failed or still:
        say("could not fetch %d of them (%s): going on with the weights there are" % (len(still), reason))
    return still


def weights_for_default(args):
    """{name: path} of the models the per-photo default can use, those it uses fetched first when the reference
    folder is the default one (a folder the user names is taken as it is)."""
    from photo_noise import REFERENCE, REFERENCE_DIR, available_weights, first_use
    if os.path.abspath(args.reference_weights) == os.path.abspath(REFERENCE_DIR):
        fetch_missing([REFERENCE[name] for name in first_use()], REFERENCE_DIR, offline(args))
    return available_weights(reference_dir=args.reference_weights)
