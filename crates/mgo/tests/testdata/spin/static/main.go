// Command static spends its time in main.spin: the function profilers and
// debuggers must name in a bundle as they do in a plain build.
//
//	static ROUNDS   spins ROUNDS times, prints the result and exits
//	static forever  prints "spinning", then spins until killed
package main

import (
	"fmt"
	"os"
	"strconv"
)

//go:noinline
func spin(rounds int) uint64 {
	x := uint64(0x9E3779B97F4A7C15)
	for i := 0; i < rounds; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: static ROUNDS|forever")
		os.Exit(2)
	}
	if os.Args[1] == "forever" {
		fmt.Println("spinning")
		for {
			spin(1 << 20)
		}
	}
	rounds, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(spin(rounds))
}
