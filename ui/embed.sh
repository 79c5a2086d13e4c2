#!/bin/sh
# Print the C header that holds the web console's files for ui.c: each one
# shrunk here with awk, then packed by ui/pack (built with the host's cc).
# The build needs nothing else, and no package registry.
#
# HTML, CSS and JS are shrunk on the way, safely for how ui/ is written:
# leading indentation, blank lines, lines that are only a comment, and a
# JS comment after code when a tab precedes its "//" go. Newlines stay, so
# JS reads as it was written. For ui/app.js this gives ui_app_js[] (packed),
# UI_APP_JS_LEN and UI_APP_JS_ETAG (see ui/pack.c).
# Usage: sh ui/embed.sh PACK FILE... >ui/assets.h
#        sh ui/embed.sh -s FILE	(FILE as served, for the tests)
set -e

shrink() {
	case "$1" in
	*.html|*.css|*.js)
		awk -v kind="${1##*.}" '
		{ sub(/^[ \t]+/, "") }
		skip { if (index($0, end)) skip = 0; next }
		kind == "html" && /^<!--/ { end = "-->" }
		kind != "html" && /^\/\*/ { end = "*/" }
		/^<!--/ || /^\/\*/ { if (!index($0, end)) skip = 1; next }
		kind == "js" && /^\/\// { next }
		kind == "js" { sub(/\t+\/\/ .*$/, "") }
		$0 != "" { print }' "$1"
		;;
	*)
		cat "$1"
		;;
	esac
}

if [ "$1" = -s ]; then
	shrink "$2"
	exit
fi
pack=$1
shift
echo "/* Generated from ui/ by ui/embed.sh; do not edit. */"
for f in "$@"; do
	echo "/* ${f} */"
	shrink "${f}" | "${pack}" "$(basename "${f}" | tr -c 'A-Za-z0-9\n' '_')"
done
