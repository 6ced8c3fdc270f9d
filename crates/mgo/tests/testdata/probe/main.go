// Command probe reports how it was started, so that mgo's tests can check
// that the launcher hands over the process unchanged.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe pid|args|env|exe|fds|level|cat|exit N|signal")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pid":
		fmt.Println(os.Getpid())
	case "args":
		for _, a := range os.Args {
			fmt.Printf("%q\n", a)
		}
	case "env":
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
	case "exe":
		target, err := os.Readlink("/proc/self/exe")
		if err != nil {
			fail(err)
		}
		f, err := os.Open("/proc/self/exe")
		if err != nil {
			fail(err)
		}
		const fGetSeals = 1034
		seals, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), fGetSeals, 0)
		if errno != 0 {
			fail(errno)
		}
		fmt.Printf("%s\nseals=%d\n", target, seals)
	case "fds":
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			fail(err)
		}
		for _, e := range entries {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Printf("%s %s\n", e.Name(), target)
		}
	case "level":
		info, ok := debug.ReadBuildInfo()
		if !ok {
			fail(fmt.Errorf("no build info"))
		}
		for _, s := range info.Settings {
			if s.Key == "GOAMD64" {
				fmt.Println(s.Value)
			}
		}
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fail(err)
		}
	case "exit":
		code, err := strconv.Atoi(strings.TrimSpace(os.Args[2]))
		if err != nil {
			fail(err)
		}
		os.Exit(code)
	case "signal":
		// The Go runtime re-raises SIGTERM with the default action, so the
		// parent sees death by signal, as with any program.
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "probe:", err)
	os.Exit(3)
}
