package localenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestWatchConfirmationCodesReadsThePoolsStore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, ".cognito", "db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(users string) {
		if err := os.WriteFile(filepath.Join(db, "local_abc.json"), []byte(`{"Options":{},"Users":{`+users+`}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		WatchConfirmationCodes(ctx, dir, "local_abc", func(to, code string) { mu.Lock(); got = append(got, to+" "+code); mu.Unlock() })
		close(done)
	}()
	ada := `"sub-1":{"Username":"sub-1","ConfirmationCode":"%s","Attributes":[{"Name":"sub","Value":"sub-1"},{"Name":"email","Value":"ada@example.com"}]}`
	write(fmt.Sprintf(ada, "111111"))
	time.Sleep(300 * time.Millisecond)
	write(fmt.Sprintf(ada, "111111") + `,"sub-2":{"Username":"sub-2","Attributes":[{"Name":"email","Value":"bo@example.com"}]}`)
	time.Sleep(300 * time.Millisecond)
	write(`{"broken`)
	time.Sleep(300 * time.Millisecond)
	write(fmt.Sprintf(ada, "222222"))
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if want := []string{"ada@example.com 111111", "ada@example.com 222222"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("codes = %q, want %q: each code once, none for a confirmed user", got, want)
	}
}
