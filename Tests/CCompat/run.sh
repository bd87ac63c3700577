#!/bin/sh
# Compile a C program written against CloudABI's reference argdata.h with
# our header and sources, run it, and check the header under strict C11
# and as C++.  Run from the package root: sh Tests/CCompat/run.sh
# Prints "N passed, N failed"; exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT INT TERM

CC=${CC:-cc}
CXX=${CXX:-c++}

# The header alone, as strict as the team's C: no warning allowed.
printf '#include <argdata.h>\nint main(void) { return 0; }\n' > "$out/h.c"
$CC -std=c11 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$out/h.c"
if command -v "$CXX" >/dev/null 2>&1; then
	cp "$out/h.c" "$out/h.cc"
	$CXX -std=c++11 -Wall -Wextra -Werror -Iinclude -fsyntax-only "$out/h.cc"
fi

# The program, against our header and argdata's sources alone: argdata
# needs nothing of the kernel model.
$CC -std=c11 -Wall -Werror -Iinclude -o "$out/argdata_reference_api" \
    Tests/CCompat/argdata_reference_api.c Sources/CArgdata/*.c -lm
"$out/argdata_reference_api"

# Every behaviour the reference's own unit tests check, with argdata's
# sources alone (argdata_reference_behaviour.c says which).
$CC -std=c11 -Wall -Wextra -Werror -Iinclude -o "$out/argdata_reference_behaviour" \
    Tests/CCompat/argdata_reference_behaviour.c Sources/CArgdata/*.c -lm
"$out/argdata_reference_behaviour"
# ... and again under AddressSanitizer and UndefinedBehaviorSanitizer,
# leaks included.
$CC -std=c11 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
    -Iinclude -o "$out/argdata_reference_behaviour_asan" \
    Tests/CCompat/argdata_reference_behaviour.c Sources/CArgdata/*.c -lm
ASAN_OPTIONS=detect_leaks=1 "$out/argdata_reference_behaviour_asan"
