#!/usr/bin/env bash
# Vendors nhsuk-frontend's compiled CSS and JS into ipoa/static/vendor/nhsuk/ (`make vendor-nhsuk`).
# Re-running it reproduces the committed files byte for byte. The CSS is post-processed for our CSP
# ('self' only): the @font-face rules that fetch Frutiger from assets.nhs.uk are dropped (the font is
# licensed for nhs.uk; Arial, the design system's own fallback, is used instead) and the icon URLs,
# compiled as /assets/images/..., are made relative to the CSS file so they resolve under /static/.
set -euo pipefail

VERSION="${NHSUK_FRONTEND_VERSION:-10.6.1}"
# sha256 of the npm tarball for the version above: a changed tarball stops the script.
TARBALL_SHA256="${NHSUK_FRONTEND_TARBALL_SHA256:-1af037bcb75237c4208809d3ac9a06522ccf61b2268221268ead3985bceb060b}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/ipoa/static/vendor/nhsuk"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "nhsuk-frontend@$VERSION" >/dev/null)
TGZ="$WORK/nhsuk-frontend-$VERSION.tgz"
GOT="$(sha256sum "$TGZ" | cut -d' ' -f1)"
if [ "$GOT" != "$TARBALL_SHA256" ]; then
  echo "nhsuk-frontend-$VERSION.tgz has sha256 $GOT, expected $TARBALL_SHA256" >&2
  echo "(updating the version? set NHSUK_FRONTEND_TARBALL_SHA256 and update this script)" >&2
  exit 1
fi
tar -xzf "$TGZ" -C "$WORK"
SRC="$WORK/package/dist/nhsuk"

rm -rf "$DEST"
mkdir -p "$DEST/images"
# The JS is an ES module (it ends in `export {...}`): ipoa/static/nhsuk-init.js imports it. Unchanged.
cp "$SRC/nhsuk-frontend.min.js" "$DEST/nhsuk-frontend.min.js"

python3 - "$SRC/nhsuk-frontend.min.css" "$DEST/nhsuk-frontend.min.css" "$DEST/images.txt" <<'PY'
import re
import sys

src, dest, images_list = sys.argv[1:4]
css = open(src, encoding="utf-8").read()
font_faces = re.findall(r"@font-face\{[^}]*\}", css)
assert font_faces and all("assets.nhs.uk" in f for f in font_faces), "the @font-face rules have changed"
for rule in font_faces:
    css = css.replace(rule, "")
css = css.replace("url(/assets/images/", "url(images/")
css = re.sub(r"/\*# sourceMappingURL=[^*]*\*/\s*$", "", css)
urls = sorted(set(re.findall(r"url\(([^)]*)\)", css)))
bad = [u for u in urls if not u.startswith(("images/", "data:", '"data:', "'data:"))]
assert not bad, f"URLs the CSP would refuse or that are not vendored: {bad}"
open(dest, "w", encoding="utf-8").write(css if css.endswith("\n") else css + "\n")
open(images_list, "w").write("".join(u[len("images/"):] + "\n" for u in urls if u.startswith("images/")))
PY
while read -r image; do
  cp "$SRC/assets/images/$image" "$DEST/images/$image"
done < "$DEST/images.txt"
rm "$DEST/images.txt"

# The package says "license": "MIT" (package.json) and its README names NHS England; it ships no LICENSE file.
cat > "$DEST/NHSUK-FRONTEND.LICENSE" <<'MIT'
nhsuk-frontend (https://github.com/nhsuk/nhsuk-frontend), MIT License

Copyright (c) NHS England

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial
portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO
EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN
AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE
OR OTHER DEALINGS IN THE SOFTWARE.
MIT

echo "nhsuk-frontend $VERSION (tarball sha256 $GOT) vendored into ${DEST#"$ROOT"/}:"
(cd "$DEST" && find . -type f | sort | xargs sha256sum)
