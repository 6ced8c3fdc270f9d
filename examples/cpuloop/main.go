// Command cpuloop runs a CPU-bound loop whose code differs by GOAMD64 level
// (POPCNT from v2, FMA and BMI from v3) and prints a result that must not.
package main

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
)

func main() {
	rounds := 2_000_000
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 0 {
			fmt.Fprintln(os.Stderr, "usage: cpuloop [rounds]")
			os.Exit(2)
		}
		rounds = n
	}
	var state uint64 = 0x9E3779B97F4A7C15
	ones, zeros := 0, 0
	sum := 0.0
	for i := 0; i < rounds; i++ {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		ones += bits.OnesCount64(state)
		zeros += bits.LeadingZeros64(state) + bits.TrailingZeros64(state)
		x := float64(state>>11) / (1 << 53)
		sum = math.FMA(x, 0.5, sum)
	}
	fmt.Printf("rounds=%d ones=%d zeros=%d sum=%.6f\n", rounds, ones, zeros, sum)
}
