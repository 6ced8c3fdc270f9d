package levels

import (
	"os"
	"testing"
)

// Each level's test binary must hold the file its level selects: go test
// runs under mgo with the level in GOAMD64.
func TestBuiltMatchesLevel(t *testing.T) {
	level := os.Getenv("GOAMD64")
	want := "below v3"
	if level == "v3" || level == "v4" {
		want = "v3+"
	}
	if Built != want {
		t.Fatalf("GOAMD64=%s compiled %q, want %q", level, Built, want)
	}
	if os.Getenv("LEVELS_FAIL_AT") == level {
		t.Fatalf("failing at %s as LEVELS_FAIL_AT asks", level)
	}
	t.Logf("GOAMD64=%s compiled %s", level, Built)
}
