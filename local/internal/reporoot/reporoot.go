// Package reporoot finds the repository's top directory, for the files
// the local stack reads from it (template.yaml, tools/, local/console/).
package reporoot

import (
	"os"
	"path/filepath"
	"runtime"
)

// Dir is the repository's top directory: from this file's path, or, in a
// program built with -trimpath (make run's kandy-local, so that a fresh
// clone reuses the build cache), from the program's place in .tools/bin.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	if filepath.IsAbs(file) {
		return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
	}
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	return filepath.Clean(filepath.Join(filepath.Dir(exe), "..", ".."))
}
