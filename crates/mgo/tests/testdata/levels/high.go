//go:build amd64.v3

package levels

// Built says which file the level compiled.
const Built = "v3+"
