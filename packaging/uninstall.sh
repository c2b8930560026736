#!/bin/sh
# Remove what packaging/install.sh installed for the current user; your models, runs and
# settings are left alone.
set -eu

data="${XDG_DATA_HOME:-$HOME/.local/share}"
link="$HOME/.local/bin/cifar-gui"

rm -rf "$data/cifar-gui" "$data/cifar-gui.new"
rm -f "$data/applications/cifar-gui.desktop"
for size in 48x48 128x128 256x256; do
    rm -f "$data/icons/hicolor/$size/apps/cifar-gui.png"
done
rm -f "$data/icons/hicolor/scalable/apps/cifar-gui.svg"
# Only our own link: a cifar-gui installed some other way (pip --user) stays.
if [ -L "$link" ]; then
    case "$(readlink "$link")" in
        "$data/cifar-gui/"* | */.venv/bin/cifar-gui) rm -f "$link" ;;
    esac
fi

if [ -d "$data/applications" ] && command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$data/applications" || true
fi
if [ -f "$data/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
fi
echo "uninstalled cifar-gui from $data"
