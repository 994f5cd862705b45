#!/usr/bin/env bash
# The references' published checkpoints, checked by sha256:
#   bash weights/get_reference_weights.sh [DIR] [--list] [--from BASE]
# DIR (default weights/reference) gets the layout the README's commands use:
#   saoyan/DnCNN-S-15|25|50/net.pth, saoyan/DnCNN-B/net.pth        SaoYan/DnCNN-PyTorch logs/
#   adnet/g15|g25|g50|gblind/model_70.pth                           hellloxiaotian/ADNet gray/
#   adnet/color/c15|c25|c35|c50|c75|cblind/model_70.pth             hellloxiaotian/ADNet color/
#   adnet/real/model_25.pth                                         hellloxiaotian/ADNet real/real_model/
# A file already there with the right sha256 is kept; a broken download resumes from NAME.part; a download
# whose sha256 is wrong is deleted and the script exits non-zero.
# --list   print what would be fetched, fetch nothing
# --from   replaces https://github.com; a URL (file:// included) or a local folder laid out as
#          OWNER/REPO/raw/BRANCH/PATH
set -euo pipefail

# owner/repo  branch  path in the repository  path under DIR  sha256
FILES="
SaoYan/DnCNN-PyTorch master logs/DnCNN-S-15/net.pth saoyan/DnCNN-S-15/net.pth 6eaf743d87f977693ad2ab1e35b0d09c3c8bd87fb74b8ed2d659918bdba2cbd9
SaoYan/DnCNN-PyTorch master logs/DnCNN-S-25/net.pth saoyan/DnCNN-S-25/net.pth 65f0f0ea16d667274a75a7eec19950b22e752007c8a3147831b2d5441bd62920
SaoYan/DnCNN-PyTorch master logs/DnCNN-S-50/net.pth saoyan/DnCNN-S-50/net.pth dfdd4d9b10e50d466a48f15f4aaa0ba0ccfa4b71fc80b5ccbcecddce8e69a50e
SaoYan/DnCNN-PyTorch master logs/DnCNN-B/net.pth saoyan/DnCNN-B/net.pth dc25406eff05b9f4d1b30084a7a774e458e963f67d4a0ad1d2d9efbef4325b39
hellloxiaotian/ADNet master gray/g15/model_70.pth adnet/g15/model_70.pth 838707e8916d3fb7eb690fac465d1febde8282169f846100d398573a382cd6ed
hellloxiaotian/ADNet master gray/g25/model_70.pth adnet/g25/model_70.pth 7c2e95b22513ce3b62cdde9611dd686a85940caa424c2df8c75009b92b9db6d8
hellloxiaotian/ADNet master gray/g50/model_70.pth adnet/g50/model_70.pth 2b35cb02aaa20eff233b505e742861f420d93294a3bc4d2213f055b8ef7e44b0
hellloxiaotian/ADNet master gray/gblind/model_70.pth adnet/gblind/model_70.pth dd4f608f4970241d3078b290636316800e11418e4c747ff2b137de91bb61c9be
hellloxiaotian/ADNet master color/c15/model_70.pth adnet/color/c15/model_70.pth 1a184df785d84dd810a609ec5802109149a03d3b4445a96d17c795ec428fd032
hellloxiaotian/ADNet master color/c25/model_70.pth adnet/color/c25/model_70.pth 57f3210b938a7fbc7f299bbb91b26de06d7dce0e03bc179cc9f9f098795469c6
hellloxiaotian/ADNet master color/c35/model_70.pth adnet/color/c35/model_70.pth 258aa4ae9a9b522436c0e3455c88f1089bd1172b4123c29b2135bd3f6e2ea65c
hellloxiaotian/ADNet master color/c50/model_70.pth adnet/color/c50/model_70.pth e0586deb17740eb3aed4ebfa0c4b87492f61940cb570ad5f351a5128a992833e
hellloxiaotian/ADNet master color/c75/model_70.pth adnet/color/c75/model_70.pth 6d84c27d67c623cd68c22d5ff3c9566dce9fe73ecb8cc1e006c64b39a2469ec0
hellloxiaotian/ADNet master color/cblind/model_70.pth adnet/color/cblind/model_70.pth 2ecc32bf21612c49add97d431fae5854207303da06a81ac5f00f7e53f85d3537
hellloxiaotian/ADNet master real/real_model/model_25.pth adnet/real/model_25.pth 41e597a6859fe5b968bbcef844ad165c08d007ef4be53f780e4df9b0cac08689
"

fail() { echo "error: $*" >&2; exit 2; }

dest="" base="https://github.com" list=0
while [ $# -gt 0 ]; do
  case "$1" in
    --list) list=1 ;;
    --from) [ $# -ge 2 ] || fail "--from needs a URL or a folder"; base=$2; shift ;;
    --from=*) base=${1#--from=} ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) fail "unknown option $1 (see --help)" ;;
    *) [ -z "$dest" ] || fail "one DIR only (got $dest and $1)"; dest=$1 ;;
  esac
  shift
done
dest=${dest:-$(dirname "$0")/reference}
case "$base" in
  *://*) ;;
  *) [ -d "$base" ] || fail "--from $base: no such folder (nor a URL)"
     base="file://$(cd "$base" && pwd)" ;;  # curl reads local files through file:// URLs
esac
base=${base%/}

if command -v sha256sum >/dev/null; then sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null; then sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else fail "neither sha256sum nor shasum is installed"; fi
[ "$list" = 1 ] || command -v curl >/dev/null || fail "curl is not installed"

# fetch URL TARGET SHA: downloads into TARGET.part (resumed if there), keeps it as TARGET if its sha256 matches
fetch() {
  local url=$1 target=$2 want=$3 part=$2.part got
  mkdir -p "$(dirname "$target")"
  # a .part that is already whole makes some servers refuse the range: its checksum then decides
  if ! curl -fsSL --retry 3 -C - -o "$part" "$url" && ! [ "$(sha256 "$part" 2>/dev/null)" = "$want" ]; then
    echo "error: could not download $url (partial file kept as $part: run again to resume)" >&2
    return 1
  fi
  got=$(sha256 "$part")
  if [ "$got" != "$want" ]; then
    rm -f "$part"
    echo "error: $url: sha256 $got, expected $want: corrupted download deleted" >&2
    return 1
  fi
  mv -f "$part" "$target"
}

fetched=0 kept=0 failed=0
while read -r repo branch path rel want; do
  [ -n "$repo" ] || continue
  url="$base/$repo/raw/$branch/$path" target="$dest/$rel"
  if [ -f "$target" ] && [ "$(sha256 "$target")" = "$want" ]; then
    echo "have   $target"
    kept=$((kept + 1))
    continue
  fi
  if [ "$list" = 1 ]; then
    echo "fetch  $url -> $target"
    continue
  fi
  [ ! -f "$target" ] || echo "$target does not match its sha256: fetching it again"
  echo "fetch  $url"
  if fetch "$url" "$target" "$want"; then fetched=$((fetched + 1)); else failed=$((failed + 1)); fi
done <<< "$FILES"

[ "$list" = 0 ] || exit 0
echo "$fetched fetched, $kept already there, $failed failed, in $dest"
[ "$failed" = 0 ] || exit 1
cat <<EOF
Try them:
  python test.py --logdir $dest/saoyan/DnCNN-S-25 --test_data Set68 --test_noiseL 25
  python test.py --logdir $dest/adnet/g25 --test_data Set68 --test_noiseL 25
  python test.py --logdir $dest/adnet/color/c25 --test_data McMaster --test_noiseL 25 --seed 12 --copies 3
  python demo.py --demo_pth_path $dest/adnet/color/c25 --demo_img_path data/demo --test_noiseL 25
  python test.py --logdir $dest/adnet/real/model_25.pth --test_data my_photos --test_noiseL 0 --save_dir out
EOF
