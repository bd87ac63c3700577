#!/usr/bin/env bash
# The README's examples (and the DocC articles' Swift ones), compiled
# as a reader would use them: every
# ```swift block as a program's main.swift, compiled and linked against
# the modules `swift build` made (a block that starts with
# `// swift-tools-version` is a manifest, loaded with `swift package
# dump-package` beside a link to this repository), and every ```c block
# built as a program against the C libraries and run.  Needs a `swift
# build` first (CI runs it after `swift test`).
#
#   Tests/Readme/check.sh [--help]
set -euo pipefail
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi
cd "$(dirname "$0")/../.."
bin=$(swift build --show-bin-path)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Each fenced block of language $1 into $tmp/$1-N.
awk -v dir="$tmp" '
	/^```swift$/ { lang = "swift"; n++; next }
	/^```c$/ { lang = "c"; n++; next }
	/^```/ { lang = ""; next }
	lang != "" { print > (dir "/" lang "-" n) }
' README.md
# And the DocC articles' ```swift blocks, as programs too; a block
# without an import continues its article's example and gets
# `import FDRemap` and `import SystemPackage`.
for md in Sources/FDRemap/FDRemap.docc/*.md; do
	awk -v dir="$tmp" -v base="$(basename "$md" .md)" '
		/^```swift$/ { lang = "swift"; n++; next }
		/^```/ { lang = ""; next }
		lang != "" { print > (dir "/docc-" base "-" n) }
	' "$md"
done
for f in "$tmp"/docc-*; do
	[ -e "$f" ] || continue
	if grep -q '^import ' "$f"; then
		mv "$f" "$tmp/swift-$(basename "$f")"
	else
		{ printf 'import FDRemap\nimport SystemPackage\n'; cat "$f"; } \
		    >"$tmp/swift-$(basename "$f")"
		rm "$f"
	fi
done

# What a Swift example links against: the objects `swift build` made of
# the FDRemap product and what it depends on.
objects=$(find "$bin/FDRemap.build" "$bin/SystemPackage.build" \
    "$bin/CSystem.build" "$bin/CFDRemapHost.build" "$bin/CArgdata.build" \
    "$bin/CFDRemapKernel.build" -name '*.o')

swift_count=0
failed=0
for f in "$tmp"/swift-*; do
	[ -e "$f" ] || continue
	if head -1 "$f" | grep -q '^// swift-tools-version'; then
		mkdir -p "$f.pkg/MyTool"
		ln -s "$PWD" "$f.pkg/FDRemap"
		cp "$f" "$f.pkg/MyTool/Package.swift"
		if ! swift package --package-path "$f.pkg/MyTool" dump-package \
		    >/dev/null 2>"$f.log"; then
			echo "README: a manifest example does not load:"
			cat "$f" "$f.log"
			failed=$((failed + 1))
		fi
		swift_count=$((swift_count + 1))
		continue
	fi
	mkdir -p "$f.d"
	# A block with @main is a library file; any other, a main.swift.
	src="$f.d/main.swift"
	mode=
	if grep -q '^@main' "$f"; then
		src="$f.d/program.swift"
		mode=-parse-as-library
	fi
	cp "$f" "$src"
	# Compiled and linked into a program, not only type-checked: the
	# ownership checks (a ~Copyable value consumed) run after type
	# checking, and a program that only type-checks may not build.
	# shellcheck disable=SC2086
	if ! swiftc $mode -o "$f.d/program" -I "$bin/Modules" \
	    -Xcc -fmodule-map-file=include/module.modulemap \
	    -Xcc -fmodule-map-file=Sources/CArgdata/include/module.modulemap \
	    -Xcc -fmodule-map-file=Sources/CFDRemapHost/include/module.modulemap \
	    -Xcc -fmodule-map-file=.build/checkouts/swift-system/Sources/CSystem/include/module.modulemap \
	    -Xcc -Iinclude "$src" $objects 2>"$f.log"; then
		echo "README or DocC: a Swift example does not build ($(basename "$f")):"
		cat "$f"
		cat "$f.log"
		failed=$((failed + 1))
	fi
	swift_count=$((swift_count + 1))
done
if [ "$failed" -ne 0 ]; then
	echo "README or DocC: $failed of $swift_count Swift examples do not build"
	exit 1
fi

c_count=0
for f in "$tmp"/c-*; do
	[ -e "$f" ] || continue
	if ! grep -q '^main(' "$f"; then
		echo "README: a C example is not a program (no main):"
		cat "$f"
		exit 1
	fi
	cp "$f" "$f.c"
	cc -std=c11 -pedantic -Wall -Wextra -Werror -Iinclude "$f.c" \
	    Sources/CFDRemapHost/*.c Sources/CArgdata/*.c \
	    Sources/CFDRemapKernel/*.c -lpthread -o "$f.out"
	"$f.out" >/dev/null
	c_count=$((c_count + 1))
done
echo "README: Swift examples compiled and linked (manifests loaded): $swift_count; C programs built and run: $c_count"
