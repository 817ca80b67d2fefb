// Command local-kms serves nsmithuk/local-kms's KMS API to the local run's
// front only, on a Unix socket (see package frontonly). Its own main
// listens on every interface, with no authentication, and cannot be told
// otherwise. Settings are local-kms's: KMS_DATA_PATH, KMS_REGION,
// KMS_ACCOUNT_ID; and frontonly's.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	kms "github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"

	"kandy-provisioner-tools/cmd/internal/frontonly"
)

func main() {
	config.AWSAccountId = getenv("KMS_ACCOUNT_ID", "111122223333")
	config.AWSRegion = getenv("KMS_REGION", "us-east-1")
	path, err := filepath.Abs(getenv("KMS_DATA_PATH", "local-kms-data"))
	if err != nil {
		log.Fatal(err)
	}
	config.DatabasePath = path
	// LevelDB lets one process open a folder: close it on the way out, so a
	// restart on the same folder can open it.
	db := data.NewDatabase(path)
	defer db.Close()

	l, h, err := frontonly.Listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { kms.HandleRequest(w, r, db) }))
	if err != nil {
		log.Fatal("local-kms: ", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("local-kms on %s, keys in %s", l.Addr(), path)
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
