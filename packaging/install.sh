#!/bin/sh
# Install cifar-gui for the current user (Linux, freedesktop menus), no root needed.
#
#   packaging/install.sh            the PyInstaller build in dist/cifar-gui (make package)
#   packaging/install.sh DIST_DIR   another one-folder build
#   packaging/install.sh --venv     no build: the launcher runs this checkout's .venv
#
# Puts the app under $XDG_DATA_HOME/cifar-gui (default ~/.local/share/cifar-gui), the menu
# entry under .../applications, the icons under .../icons/hicolor and a `cifar-gui` link in
# ~/.local/bin. packaging/uninstall.sh removes exactly these.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
data="${XDG_DATA_HOME:-$HOME/.local/share}"
bindir="$HOME/.local/bin"
appdir="$data/cifar-gui"

if [ "${1:-}" = "--venv" ]; then
    program="$root/.venv/bin/cifar-gui"
    [ -x "$program" ] || { echo "error: $program not found: run 'make run' once first" >&2; exit 1; }
else
    dist="${1:-$root/dist/cifar-gui}"
    [ -x "$dist/cifar-gui" ] || { echo "error: no build in $dist: run 'make package' first" >&2; exit 1; }
    # Copy beside the old copy, then swap, so a failed copy leaves the old install working.
    mkdir -p "$data"
    rm -rf "$appdir.new"
    cp -a "$dist" "$appdir.new"
    rm -rf "$appdir"
    mv "$appdir.new" "$appdir"
    program="$appdir/cifar-gui"
fi

# The Exec key takes a quoted path; these characters would need escaping of their own
# (there, or in the sed command below).
case "$program" in
    *[\"\`\$\\%\&\|]*) echo "error: the path $program has a character the .desktop format cannot take" >&2; exit 1 ;;
esac

for size in 48x48 128x128 256x256; do
    mkdir -p "$data/icons/hicolor/$size/apps"
    cp "$root/resources/icons/hicolor/$size/apps/cifar-gui.png" "$data/icons/hicolor/$size/apps/"
done
mkdir -p "$data/icons/hicolor/scalable/apps"
cp "$root/resources/icons/hicolor/scalable/apps/cifar-gui.svg" "$data/icons/hicolor/scalable/apps/"

mkdir -p "$data/applications"
sed "s|^Exec=.*|Exec=\"$program\" %F|" "$here/cifar-gui.desktop" > "$data/applications/cifar-gui.desktop"
if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate --no-hints "$data/applications/cifar-gui.desktop"
fi

mkdir -p "$bindir"
ln -sfn "$program" "$bindir/cifar-gui"

# Refresh the caches that menus and "Open with" read; absent tools are not an error.
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true

echo "installed: $data/applications/cifar-gui.desktop -> $program"
case ":$PATH:" in
    *":$bindir:"*) ;;
    *) echo "note: $bindir is not on your PATH; the menu entry works regardless" ;;
esac
