package codeshape

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

var (
	// mdLink is a Markdown link or image: [text](target) or ![alt](target).
	mdLink     = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	fence      = regexp.MustCompile("(?ms)^```.*?^```")
	inlineCode = regexp.MustCompile("`[^`\n]*`")
	heading    = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
)

// Every relative link of the project's Markdown leads to a file that
// exists and, when it names a section, to a heading of that file, so a
// moved or renamed document cannot leave the README pointing nowhere.
func TestRelativeLinksResolve(t *testing.T) {
	dir := root(t)
	docs := projectFiles(t, ".md")
	if len(docs) < 5 || !slices.Contains(docs, "README.md") {
		t.Fatalf("found only %v; the check would prove nothing", docs)
	}
	checked := 0
	for _, doc := range docs {
		for _, target := range links(t, filepath.Join(dir, doc)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			file, anchor, _ := strings.Cut(target, "#")
			path := filepath.Join(dir, filepath.Dir(doc), file)
			if file == "" {
				path = filepath.Join(dir, doc)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, target)
				continue
			}
			if anchor != "" && !slices.Contains(anchors(t, path), anchor) {
				t.Errorf("%s links to %s, but %s has no heading #%s", doc, target, file, anchor)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d relative links; the check would prove nothing", checked)
	}
}

// prose is a Markdown file without its fenced code blocks.
func prose(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fence.ReplaceAllString(string(raw), "")
}

// links are the targets of a file's links, outside code.
func links(t *testing.T, path string) []string {
	var out []string
	for _, m := range mdLink.FindAllStringSubmatch(inlineCode.ReplaceAllString(prose(t, path), ""), -1) {
		out = append(out, m[1])
	}
	return out
}

// anchors are the section ids GitHub gives a file's headings.
func anchors(t *testing.T, path string) []string {
	var out []string
	for _, m := range heading.FindAllStringSubmatch(prose(t, path), -1) {
		out = append(out, slug(m[1]))
	}
	return out
}

// slug is GitHub's id for a heading: lower case, spaces as hyphens, and
// no punctuation but hyphens and underscores.
func slug(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
