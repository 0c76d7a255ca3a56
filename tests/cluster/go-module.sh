# Sourced by the cluster's build scripts. module_dir MODULE@VERSION prints the directory where
# `go mod download` put that module's source (its "Dir"), downloading it first if needed, with
# the go command in $GO.
module_dir() {
    "$GO" mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}
