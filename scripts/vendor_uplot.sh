#!/usr/bin/env bash
# Vendors uPlot (MIT; https://github.com/leeoniya/uPlot), the dashboard's chart library, from the
# npm registry into third_party/uplot: the pinned release's tarball, checked against the
# registry's published sha512 integrity value, then its minified script, stylesheet and LICENSE.
# Idempotent: does nothing when the pinned version is already there. pnnd embeds the files at
# build time (daemon/CMakeLists.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=1.6.32
integrity=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
dest=$root/third_party/uplot
if [[ -f $dest/VERSION && $(cat "$dest/VERSION") == "$version" && -f $dest/uPlot.iife.min.js ]]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
url=https://registry.npmjs.org/uplot/-/uplot-$version.tgz
echo "vendor_uplot: fetching $url"
if ! curl -fsSL --retry 3 --max-time 60 -o "$tmp/uplot.tgz" "$url"; then
  echo "vendor_uplot: cannot download $url (no network?)" >&2
  exit 1
fi
expected=${integrity#sha512-}
actual=$(openssl dgst -sha512 -binary "$tmp/uplot.tgz" 2>/dev/null | base64 -w0 ||
         python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tmp/uplot.tgz")
if [[ $actual != "$expected" ]]; then
  echo "vendor_uplot: checksum mismatch for $url (expected $expected, got $actual): not installed" >&2
  exit 1
fi
tar -xzf "$tmp/uplot.tgz" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$dest/"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
echo "$version" > "$dest/VERSION"
echo "vendor_uplot: uPlot $version in $dest"
