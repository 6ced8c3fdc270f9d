// Package fma computes x*y+z, which from v3 on the compiler fuses into one
// FMA instruction (golang/go#71204): one rounding instead of two, so the
// result differs in the last bits.
package fma

//go:noinline
func MulAdd(x, y, z float64) float64 { return x*y + z }
