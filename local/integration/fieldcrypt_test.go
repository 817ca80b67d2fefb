package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestSealAndOpenAgainstLocalKMS(t *testing.T) {
	sockets, err := guard.SocketDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockets)
	b := guard.NewBackend(sockets, "local-kms")
	p, err := processes.StartKMS(b, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx := context.Background()
	client := processes.KMSVia(b.URL(), b.Client())
	key, err := processes.CreateKey(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	s := fieldcrypt.NewSealer(client, key, "accounts")
	in := provision.Credentials{FullUserID: "u@d", UserAPIKey: "UAKkey", UserPassword: "pw12secret", UserAPISecret: "UASsecret"}
	out, err := s.Seal(ctx, "sub-a", in)
	if err != nil {
		t.Fatal(err)
	}
	if out.FullUserID != "u@d" {
		t.Errorf("non-secret FullUserID changed to %q, want %q", out.FullUserID, "u@d")
	}
	if out.UserAPIKey != "UAKkey" {
		t.Errorf("non-secret UserAPIKey changed to %q, want %q", out.UserAPIKey, "UAKkey")
	}
	for name, v := range map[string]string{"UserPassword": out.UserPassword, "UserAPISecret": out.UserAPISecret} {
		if v == "" {
			t.Fatalf("%s sealed to nothing", name)
		}
		for _, secret := range []string{"pw12secret", "UASsecret"} {
			if strings.Contains(v, secret) {
				t.Fatalf("%s not sealed: %q shows %q", name, v, secret)
			}
		}
	}
	got, err := fieldcrypt.Open(ctx, client, "accounts", "sub-a", out.UserPassword)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got.UserPassword != "pw12secret" {
		t.Errorf("opened UserPassword %q, want %q", got.UserPassword, "pw12secret")
	}
	if got.UserAPISecret != "UASsecret" {
		t.Errorf("opened UserAPISecret %q, want %q", got.UserAPISecret, "UASsecret")
	}
	if _, err := fieldcrypt.Open(ctx, client, "accounts", "sub-b", out.UserPassword); !errors.Is(err, fieldcrypt.ErrCannotOpen) {
		t.Fatalf("ciphertext moved to another sub decrypted: %v", err)
	}
	if _, err := fieldcrypt.Open(ctx, client, "other-table", "sub-a", out.UserPassword); !errors.Is(err, fieldcrypt.ErrCannotOpen) {
		t.Fatalf("ciphertext moved to another table decrypted: %v", err)
	}
	if _, err := fieldcrypt.Open(ctx, client, "accounts", "sub-a", "%%%"); !errors.Is(err, fieldcrypt.ErrCannotOpen) {
		t.Fatalf("garbage decrypted: %v", err)
	}
	if s := fmt.Sprint(got) + fmt.Sprintf("%#v", got); strings.Contains(s, "pw12secret") {
		t.Fatalf("Secrets prints its contents: %s", s)
	}
}
