#!/bin/sh
# Packs what bench/webgpu_peers.ts loads from npm into tmp/webgpu_peers_denodir.tgz (about
# 15 MB), for a machine without network:
#
#   sh bench/webgpu_peers_cache.sh            # DENO="npx -y deno@2" sh ... where deno is npx's
#   # there: mkdir -p tmp/d && tar -C tmp/d -xzf tmp/webgpu_peers_denodir.tgz
#   #        DENO_DIR=tmp/d deno run -A --cached-only --config bench/deno.json bench/webgpu_peers.ts
#
# Fill it with the same Deno binary that will run it there (the cache layout is Deno's own).
set -eu
cd "$(dirname "$0")/.."
DENO="${DENO:-deno}"
dir=tmp/webgpu_peers_denodir
rm -rf "$dir" "$dir.tgz"
mkdir -p tmp
DENO_DIR="$dir" $DENO cache --config bench/deno.json bench/webgpu_peers.ts
npm="$dir/npm/registry.npmjs.org"
# Deno wants every package of bench/deno.lock's npm snapshot in the cache before it loads any,
# but this script runs only tfjs-core, tfjs-backend-webgpu (and -cpu) and onnxruntime-web's
# webgpu bundle: the other large packages keep their package.json and nothing else.
for p in onnxruntime-node esbuild-wasm core-js @tensorflow/tfjs @tensorflow/tfjs-backend-wasm \
  @tensorflow/tfjs-backend-webgl @tensorflow/tfjs-converter @tensorflow/tfjs-data \
  @tensorflow/tfjs-layers; do
  for v in "$npm/$p"/*/; do
    [ -d "$v" ] || continue
    find "$v" -mindepth 1 -maxdepth 1 ! -name package.json -exec rm -rf {} +
  done
done
# onnxruntime-web's webgpu bundle and the WebAssembly build it loads; no source maps anywhere.
for d in "$npm"/onnxruntime-web/*/dist; do
  find "$d" -type f ! -name 'ort.webgpu.bundle.min.mjs' ! -name 'ort-wasm-simd-threaded.asyncify.*' \
    -delete
done
find "$dir" -name '*.map' -type f -delete
# Deno rebuilds its analysis and code caches on first use.
rm -rf "$dir/gen" "$dir"/*_cache_v2*
tar -C "$dir" -czf "$dir.tgz" .
ls -l "$dir.tgz"
