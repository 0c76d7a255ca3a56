#!/bin/sh
# Jaeger v2 (an OTLP receiver with a query API) from the Go module proxy, for the optional
# check of `sandbench export --format otlp` in tests/test_export_otlp.py. Not run by `make
# test`: the build downloads about 1.5 GB of modules and compiles for tens of minutes on 2 cores.
#
# `go install ...@version` refuses Jaeger's module (its go.mod has a replace directive), so the
# binary is built from a throwaway main module that requires it and repeats that directive.
# Jaeger v2's Go module is tagged v1.x: v1.76.0 is the version built and tested here.
set -eu
VERSION=${JAEGER_VERSION:-v1.76.0}
DEST=${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/jaeger/$VERSION
[ -x "$DEST/jaeger" ] && { echo "$DEST/jaeger"; exit 0; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
cat > go.mod <<MOD
module sandbench.local/jaegerbuild

go 1.24.6

require github.com/jaegertracing/jaeger $VERSION

replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
MOD
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/jaegertracing/jaeger/cmd/jaeger"\n' > tools.go
go mod tidy
mkdir -p "$DEST"
go build -o "$DEST/jaeger.partial" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$DEST/jaeger.partial" "$DEST/jaeger"  # whole or not at all
echo "$DEST/jaeger"
