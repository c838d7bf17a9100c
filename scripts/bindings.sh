#!/usr/bin/env bash
# The binding check (`make bindings`, part of `make test`): gobind generates
# the Java and Objective-C bindings of ./mobile without any SDK, and this
# fails if gobind skipped a member. gobind does not fail on an unbindable
# type: it leaves the member out and writes "// skipped ..." in the
# generated code, so an app would silently lose an API. If javac is present,
# the Java output is compiled too (against a one-line stand-in for
# android.content.Context, the only Android class gobind's Seq.java uses).
#
# Usage: GOBIND=path/to/gobind scripts/bindings.sh
set -euo pipefail
cd "$(dirname "$0")/.."

GOBIND=${GOBIND:-gobind}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for lang in java objc; do
	echo "gobind -lang=go,$lang -outdir $out/$lang ./mobile"
	if ! "$GOBIND" -lang=go,"$lang" -outdir "$out/$lang" ./mobile >"$out/$lang.log" 2>&1; then
		cat "$out/$lang.log" >&2
		echo "bindings: gobind -lang=$lang failed" >&2
		exit 1
	fi
done

# Every skip gobind reports, in the generated code or its output.
skipped=$(grep -rh -i 'skipped' "$out" | sed 's/^[[:space:]]*//' | sort -u || true)
if [ -n "$skipped" ]; then
	echo "bindings: gobind skipped members of ./mobile (only bindable types may be exported):" >&2
	echo "$skipped" >&2
	exit 1
fi
for f in java/java/mobile/Node.java objc/src/gobind/Mobile.objc.h; do
	[ -s "$out/$f" ] || { echo "bindings: $f was not generated" >&2; exit 1; }
done
echo "bindings: Java and Objective-C generated, nothing skipped"

if command -v javac >/dev/null; then
	stub="$out/stub/android/content"
	mkdir -p "$stub" "$out/classes"
	printf 'package android.content;\n\n/** Compile-time stand-in for the Android class. */\npublic class Context {}\n' >"$stub/Context.java"
	echo "javac $out/java/java/{go,mobile}/*.java"
	javac -Xlint:none -d "$out/classes" "$stub/Context.java" $(find "$out/java/java" -name '*.java')
	echo "bindings: Java bindings compile ($(find "$out/classes/mobile" -name '*.class' | wc -l) classes in package mobile)"
else
	echo "bindings: javac not found; Java bindings not compiled"
fi
