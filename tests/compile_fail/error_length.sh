#!/bin/sh
# Compiles a file that must fail and checks the compiler's report: it must name the expected words
# and be at most MAX lines long (errors inside big networks must stay readable).
# Usage: error_length.sh COMPILER MAX EXPECTED FILE [compiler flags...]
compiler=$1 max=$2 expected=$3 file=$4
shift 4
if output=$("$compiler" -std=c++20 -fsyntax-only "$@" "$file" 2>&1); then
  echo "error_length: $file compiled, but it must fail"
  exit 1
fi
lines=$(printf '%s\n' "$output" | wc -l)
printf '%s\n' "$output" | cut -c1-300
echo "error_length: $lines lines (at most $max)"
printf '%s\n' "$output" | grep -q -- "$expected" || { echo "error_length: the report does not contain: $expected"; exit 1; }
[ "$lines" -le "$max" ]
