package main

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// linesEvery is how often, in items, progress is printed off a terminal.
const linesEvery = 100

// progressMode resolves --progress auto: a bar on a terminal, lines
// otherwise.
func (c cli) progressMode(mode string) string {
	if mode != "auto" {
		return mode
	}
	if f, ok := c.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "bar"
	}
	return "lines"
}

// bar is a progress bar on stderr; total -1 is a spinner.
func (c cli) bar(total int64, title, unit string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(c.stderr),
		progressbar.OptionSetDescription(title),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
	)
}
