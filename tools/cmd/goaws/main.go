// Command goaws serves Admiral-Piett/goaws's SQS (and SNS) API to the local
// run's front only, on a Unix socket (see package frontonly); its own main
// listens on every interface whatever its Host says. Usage: goaws -config
// goaws.yaml [environment], as goaws's own command; the configuration's
// Host and Port make its queue URLs, the front's address.
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
	l, h, err := frontonly.Listen(router.New())
	if err != nil {
		log.Fatal("goaws: ", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("goaws on %s", l.Addr())
	log.Fatal(srv.Serve(l))
}
