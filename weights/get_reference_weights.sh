#!/usr/bin/env bash
# The references' published checkpoints, checked by sha256:
#   bash weights/get_reference_weights.sh [DIR] [--list] [--from BASE] [--only GLOB[,GLOB...]]
# DIR (default weights/reference) gets the layout the README's commands use:
#   saoyan/DnCNN-S-15|25|50/net.pth, saoyan/DnCNN-B/net.pth        SaoYan/DnCNN-PyTorch logs/
#   adnet/g15|g25|g50|gblind/model_70.pth                           hellloxiaotian/ADNet gray/
#   adnet/color/c15|c25|c35|c50|c75|cblind/model_70.pth             hellloxiaotian/ADNet color/
#   adnet/real/model_25.pth                                         hellloxiaotian/ADNet real/real_model/
#   cszn/DnCNN3.mat, GD_*_Blind.mat, FDnCNN_*.mat, specifics/sigma=*.mat, specifics_color/*.mat
#                                                                   cszn/DnCNN model/ (the DnCNN authors' MatConvNet
#                                                                   files; "for educational and research purposes only")
#   kair/dncnn_25.pth                                               cszn/KAIR model_zoo/ (MIT)
# A file already there with the right sha256 is kept; a broken download resumes from NAME.part; a download
# whose sha256 is wrong is deleted and the script exits non-zero (3 at once when the host cannot be reached).
# --list   print what would be fetched, fetch nothing
# --only   only the files whose path under DIR matches one of the globs (e.g. 'cszn/FDnCNN_*,kair/*')
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
cszn/DnCNN master model/DnCNN3.mat cszn/DnCNN3.mat 3962377d522b6728417e364bf7a589cf34ddfb592af0bd9769e53f8123d17677
cszn/DnCNN master model/FDnCNN_Clip_color.mat cszn/FDnCNN_Clip_color.mat c43585e89fcfe923334e262a533609614d4dba99e3d432eea09a9b5c1fe7d052
cszn/DnCNN master model/FDnCNN_Clip_gray.mat cszn/FDnCNN_Clip_gray.mat 88dbc5aaa177a0f739c463401b21eb3e442461f0e79bcb449b55884044f114bd
cszn/DnCNN master model/FDnCNN_color.mat cszn/FDnCNN_color.mat f92823de4227811aa603c849d2495722c54d17d51b3a9df2ac804976daf258c3
cszn/DnCNN master model/FDnCNN_gray.mat cszn/FDnCNN_gray.mat 0f1941edbb9181a0214f9144c3bda8669f9ff036a01c20c9b3c0bf56b2e85a4e
cszn/DnCNN master model/GD_Color_Blind.mat cszn/GD_Color_Blind.mat 57db5437a44037e7675a99042fe7b14d3dcdf1c333d3ec665855566e8a59795c
cszn/DnCNN master model/GD_Gray_Blind.mat cszn/GD_Gray_Blind.mat 37f76da0b71dd2b2789ce91848fe2f184ab486203c9af9ac1b98199b60ea02b0
cszn/DnCNN master model/specifics/sigma=10.mat cszn/specifics/sigma=10.mat 6102fda4d425360dd08a98c08ebaedd3daab06b6688f3bdddf02d02c1365bdbb
cszn/DnCNN master model/specifics/sigma=15.mat cszn/specifics/sigma=15.mat 657d5115fa05d371dbf0df1f0a931eff274dae29d08a9cc0824a28caf2460e21
cszn/DnCNN master model/specifics/sigma=20.mat cszn/specifics/sigma=20.mat cda3fb1f4810249dfe34ed8798bc44a8872412af9c780777b89746f228f66824
cszn/DnCNN master model/specifics/sigma=25.mat cszn/specifics/sigma=25.mat 5a5404c9e3ef14e353760e14b885439408a654618e14f13b2e97b99b9835020b
cszn/DnCNN master model/specifics/sigma=30.mat cszn/specifics/sigma=30.mat 4fb9782689cd04f4398265412e3403372dfaf33b6374ffcf22906c3b6634d102
cszn/DnCNN master model/specifics/sigma=35.mat cszn/specifics/sigma=35.mat ac10a2804a36924a2f2b80854974e0e46c2b1e9938e48ecb9223ae69c2cc9891
cszn/DnCNN master model/specifics/sigma=40.mat cszn/specifics/sigma=40.mat b3dcd6c75f06e09ea322b5ed7c181f52ad4a8bc3a71df5523a525dc9ff5ab1be
cszn/DnCNN master model/specifics/sigma=45.mat cszn/specifics/sigma=45.mat 69b29d9f8112c3ed62b053f2ab0172d1fe5244d949f026f54fbd9d4749765b87
cszn/DnCNN master model/specifics/sigma=50.mat cszn/specifics/sigma=50.mat 517dc0b55a8da2c129704ed7921b8557aac40cf3aae9f700dc41a9e25cad0983
cszn/DnCNN master model/specifics/sigma=55.mat cszn/specifics/sigma=55.mat dcee3a053f8b4c0d4eaef6f69e3983c96b1dd538608d922f3a879ec96d385bf4
cszn/DnCNN master model/specifics/sigma=60.mat cszn/specifics/sigma=60.mat 6f4f11d9ff2654158880b34ce2e2210f8e2ddf9a3f75ff20a71454de425f30dd
cszn/DnCNN master model/specifics/sigma=65.mat cszn/specifics/sigma=65.mat 2cb90dcfb9a9158361f1f3993a7451c3bbdf6f0dd093e22adcee728abd818112
cszn/DnCNN master model/specifics/sigma=70.mat cszn/specifics/sigma=70.mat 545e251b5e66b456bf028bf395ae479d474ada5635aac2397708fe7763b1576f
cszn/DnCNN master model/specifics/sigma=75.mat cszn/specifics/sigma=75.mat a2cdee60fddf4a9da7b47caf450e3b25dbfba1c1515e71045d3f8bfbc9d1a3cd
cszn/DnCNN master model/specifics_color/color_sigma=05.mat cszn/specifics_color/color_sigma=05.mat 0c15741346a83b2a04109ac98a78899ae9bb7abfc417e267599b84aa12335f04
cszn/DnCNN master model/specifics_color/color_sigma=10.mat cszn/specifics_color/color_sigma=10.mat af72aa5db41c8df8f4916e1de97d5599b115c5297b73380049eee7f9e47e284e
cszn/DnCNN master model/specifics_color/color_sigma=15.mat cszn/specifics_color/color_sigma=15.mat c97c63c7cdee39f118c743fb0ada5c54c7074aa7aefa892e667f4f0440b8d893
cszn/DnCNN master model/specifics_color/color_sigma=25.mat cszn/specifics_color/color_sigma=25.mat 99ac1aaaa4f851a48e5a686d13de05cf8dd8863606b477d1a917e8004e9e42cf
cszn/DnCNN master model/specifics_color/color_sigma=35.mat cszn/specifics_color/color_sigma=35.mat 041cf1a15fe8e7aa9d69a43485494d04b24c84cd5487bfd821e0601f5f45f69b
cszn/DnCNN master model/specifics_color/color_sigma=50.mat cszn/specifics_color/color_sigma=50.mat 84632c872b1191826f1c493eba6926cf626173b80c2b52889401616ee1eb7ad5
cszn/DnCNN master model/specifics_color/model_sigma=00to10.mat cszn/specifics_color/model_sigma=00to10.mat 4b1642570b686a0c7ba6c3a247d8bd66ffcf787941acc9612d95f03f5adce19b
cszn/DnCNN master model/specifics_color/model_sigma=20to30.mat cszn/specifics_color/model_sigma=20to30.mat 5f3a46626817554b69a871167af088b9cebb5a1953083547047446cdebbcd36f
cszn/DnCNN master model/specifics_color/model_sigma=40to50.mat cszn/specifics_color/model_sigma=40to50.mat 1d035b1dec6075529dd10dfb2002e04f38f32946410fcf662a053941d87051f7
cszn/DnCNN master model/specifics_color/model_sigma=60to70.mat cszn/specifics_color/model_sigma=60to70.mat 02a417477a2f4fa55070b9cc604ebcc7abc8acd01e2eee9814e03115a6a0c0ab
cszn/DnCNN master model/specifics_color/model_sigma=80to90.mat cszn/specifics_color/model_sigma=80to90.mat f714cb3a9ae900d251678710c42f70c9a05f09162b81881fb7765551bc354a6b
cszn/KAIR master model_zoo/dncnn_25.pth kair/dncnn_25.pth 0451a70de9b672ae037270498fbb1c17a1c1c4403785df586ff65df5b858e5b0
"

fail() { echo "error: $*" >&2; exit 2; }

dest="" base="https://github.com" list=0 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --list) list=1 ;;
    --from) [ $# -ge 2 ] || fail "--from needs a URL or a folder"; base=$2; shift ;;
    --from=*) base=${1#--from=} ;;
    --only) [ $# -ge 2 ] || fail "--only needs a glob"; only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
  local rc=0
  curl -fsSL --retry 3 --connect-timeout 20 -C - -o "$part" "$url" || rc=$?
  if [ "$rc" = 6 ] || [ "$rc" = 7 ]; then  # no network: the other files would fail alike
    rm -f "$part"
    echo "error: cannot reach ${url%%/raw/*} (no network?): nothing more fetched" >&2
    exit 3
  fi
  if [ "$rc" != 0 ] && ! [ "$(sha256 "$part" 2>/dev/null)" = "$want" ]; then
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

# wanted REL: true when --only is not given or one of its globs matches REL
wanted() {
  [ -n "$only" ] || return 0
  local glob
  IFS=',' read -ra globs <<< "$only"
  for glob in "${globs[@]}"; do
    # shellcheck disable=SC2053
    [[ $1 == $glob ]] && return 0
  done
  return 1
}

fetched=0 kept=0 failed=0
while read -r repo branch path rel want; do
  [ -n "$repo" ] || continue
  wanted "$rel" || continue
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
  python test.py --logdir $dest/cszn/DnCNN3.mat --test_data Set68 --test_noiseL 25
  python test.py --logdir $dest/cszn/FDnCNN_gray.mat --test_data Set68 --test_noiseL 25 --noise_level 25
The DnCNN authors' files (cszn/) carry no licence; their repository says "for educational and research purposes
only". KAIR (kair/) is MIT.
EOF
