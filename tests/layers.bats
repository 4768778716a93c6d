#!/usr/bin/env bats
# tests/layers.py: the helper's modules import downward only, with no
# circle. It passes on the real tree, and fails, naming the file and the
# modules, on a tree built to break each rule.

setup() {
    T=$BATS_TEST_TMPDIR
    REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
}

# fixture: layer low holds x and y, layer high holds z.
fixture() {
    mkdir -p "$T/src"
    printf '%s\n' '//! fixture' '// layer low: the bottom' 'pub mod x;' 'pub mod y;' \
        '// layer high: above it' 'pub mod z;' >"$T/src/lib.rs"
    printf 'pub fn x() {}\n' >"$T/src/x.rs"
    printf 'use crate::x;\npub fn y() { x::x() }\n' >"$T/src/y.rs"
    printf 'use crate::{x, y::y};\npub fn z() { x::x(); y() }\n' >"$T/src/z.rs"
}

@test "the helper's modules import downward only and form no circle" {
    run python3 "$REPO/tests/layers.py" --readme "$REPO/README.md"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"cmd: cmd"* ]]
    # README's table of layers is checked against lib.rs.
    sed 's/| data | `machine` /| data | /' "$REPO/README.md" >"$T/README.md"
    run python3 "$REPO/tests/layers.py" --readme "$T/README.md"
    [ "$status" -eq 1 ]
    [[ "$output" == *"its layers table differs from lib.rs, which says data: machine manifest state"* ]]
}

@test "a tree that keeps the rules passes; comments and test modules do not count" {
    fixture
    printf '// crate::z in a comment\n#[cfg(test)]\nmod tests { use crate::z; }\n' >>"$T/src/x.rs"
    run python3 "$REPO/tests/layers.py" "$T/src"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "${lines[0]}" = "low: x y" ]
    [ "${lines[1]}" = "high: z" ]
}

@test "an import from a layer above fails, naming the file and both layers" {
    fixture
    printf 'pub fn up() { crate::z::z() }\n' >>"$T/src/x.rs"
    run python3 "$REPO/tests/layers.py" "$T/src"
    [ "$status" -eq 1 ]
    [[ "$output" == *"x.rs: x (layer low) uses z (layer high, above it)"* ]]
}

@test "a circle inside one layer fails, and so does a grouped import that makes one" {
    fixture
    printf 'use crate::{y::y as why};\npub fn again() { why() }\n' >>"$T/src/x.rs"
    run python3 "$REPO/tests/layers.py" "$T/src"
    [ "$status" -eq 1 ]
    [[ "$output" == *"circle: x -> y"* ]]
}

@test "a module in no layer, or not declared, fails" {
    fixture
    printf '%s\n' 'pub mod w;' | cat - "$T/src/lib.rs" >"$T/lib" && mv "$T/lib" "$T/src/lib.rs"
    printf 'pub fn w() {}\n' >"$T/src/w.rs"
    run python3 "$REPO/tests/layers.py" "$T/src"
    [ "$status" -ne 0 ]
    [[ "$output" == *"module w is in no layer"* ]]
    fixture
    printf 'pub fn v() {}\n' >"$T/src/v.rs"
    run python3 "$REPO/tests/layers.py" "$T/src"
    [ "$status" -eq 1 ]
    [[ "$output" == *"v.rs: module v is not declared in lib.rs"* ]]
}
