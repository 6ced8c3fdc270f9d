// Command hello greets, and says which GOAMD64 level it was built for.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

func main() {
	level := "v1"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "GOAMD64" {
				level = s.Value
			}
		}
	}
	name := "world"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	fmt.Printf("hello, %s (GOAMD64=%s)\n", name, level)
}
