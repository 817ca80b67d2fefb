package main

import (
	"bytes"
	"testing"
)

func TestJSONLinesPassesWholeJSONLinesOnly(t *testing.T) {
	var out bytes.Buffer
	j := &jsonLines{name: "Fn", out: &out}
	for _, chunk := range []string{`{"a":`, "1}\nSTART RequestId: x\n", `{"b":2}`, "\n{\"c\"", ":3"} {
		if n, err := j.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if want := "Fn | {\"a\":1}\nFn | {\"b\":2}\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
