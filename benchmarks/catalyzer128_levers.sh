#!/bin/bash
# One 8-minute 128-bit catalyzer on debsift200k, searched coded (2 x 24-d product lattice) and unquantized
# (float outputs, exact L2): the "levers on the mapping at 128 bits" table of benchmarks/RESULTS.md.
#
#   bash benchmarks/catalyzer128_levers.sh NAME [extra train options, e.g. --pca-path]
#
# Writes WORKDIR/NAME/{train.log,eval_lattice.json,eval_flat.json} (WORKDIR: $VS_WORKDIR or /tmp/vs-128).
# DATA: $VS_DATA or ../shared/data/debsift200k.h5. Threads: 2 (the reference machine).
set -eu
name=$1; shift
data=$(realpath "${VS_DATA:-../shared/data/debsift200k.h5}")
w=${VS_WORKDIR:-/tmp/vs-128}/$name
mkdir -p "$w" && cd "$w"
{ time vecspread train "$data" -o model.h5 --dout 48 --bits 128 --dint 512 --epochs 160 --val-every 4 \
    --max-minutes 8 --seed 0 --threads 2 "$@"; } > train.log 2>&1
for codec in lattice flat; do
  extra=(); [ "$codec" = lattice ] && extra=(--bits 128)
  vecspread encode model.h5 "$data" --codec "$codec" "${extra[@]}" -o "codes_$codec.h5" --threads 2 > "enc_$codec.log" 2>&1
  vecspread search "codes_$codec.h5" "$data" -k 100 -o "res_$codec.h5" --threads 2 > "search_$codec.log" 2>&1
  vecspread eval "res_$codec.h5" "$data" --json > "eval_$codec.json"
done
echo "$name $*"; cat eval_lattice.json; echo; cat eval_flat.json; echo
