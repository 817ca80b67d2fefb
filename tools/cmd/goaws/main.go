// Command goaws serves Admiral-Piett/goaws's SQS (and SNS) API on 127.0.0.1
// only; its own main listens on every interface whatever its Host says.
// Usage: goaws -config goaws.yaml [environment], as goaws's own command;
// with KANDY_FRONT_TOKEN, it answers only the local run's front (see
// package frontonly).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/Admiral-Piett/goaws/app/conf"
	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/router"
	"github.com/sirupsen/logrus"

	"kandy-provisioner-tools/cmd/internal/frontonly"
)

func main() {
	file := flag.String("config", "", "goaws's YAML configuration")
	flag.Parse()
	env := "Local"
	if flag.NArg() > 0 {
		env = flag.Arg(0)
	}
	logrus.SetFormatter(&logrus.JSONFormatter{})
	logrus.SetOutput(os.Stdout)
	logrus.SetLevel(logrus.WarnLevel)

	ports := conf.LoadYamlConfig(*file, env)
	if len(ports) == 0 {
		log.Fatal("goaws: the configuration names no port")
	}
	// Moves expired in-flight messages back, and over-received ones to
	// their dead-letter queue.
	go gosqs.PeriodicTasks(time.Second, make(chan struct{}))
	srv := &http.Server{Addr: "127.0.0.1:" + ports[0], Handler: frontonly.Handler(router.New()), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("goaws on %s", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
