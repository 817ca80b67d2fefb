// Command local-kms serves nsmithuk/local-kms's KMS API on 127.0.0.1 only.
// Its own main listens on every interface, with no authentication, and
// cannot be told otherwise. Settings are local-kms's: PORT, KMS_DATA_PATH,
// KMS_REGION, KMS_ACCOUNT_ID; and KANDY_FRONT_TOKEN, behind the local
// run's front (see package frontonly).
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
	port := os.Getenv("PORT")
	if port == "" {
		log.Fatal("local-kms: set PORT")
	}
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

	srv := &http.Server{
		Addr:              "127.0.0.1:" + port,
		Handler:           frontonly.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { kms.HandleRequest(w, r, db) })),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("local-kms on %s, keys in %s", srv.Addr, path)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
