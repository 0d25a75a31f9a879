// Command probeserver is the test containers' target for network probes.
// What it answers is steered through files, so that a test can flip it
// with an exec:
//
//	http  :8080  every path answers the status code in /tmp/http-code (200)
//	grpc  :9090  gRPC health: the status in /tmp/grpc-status (SERVING)
//	tcp   :7000  listening only while /tmp/tcp-open exists
//
// The arguments name the servers to run (all by default), so that
// containers of one pod, which share its ports, can each run one.
// `probeserver self` instead prints what the process observes of itself
// (self.go) and exits.
package main

import (
	"context"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func read(path, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return strings.TrimSpace(string(b))
}

type health struct {
	healthpb.UnimplementedHealthServer
}

func (health) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	s := healthpb.HealthCheckResponse_ServingStatus(healthpb.HealthCheckResponse_ServingStatus_value[read("/tmp/grpc-status", "SERVING")])
	return &healthpb.HealthCheckResponse{Status: s}, nil
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "self" {
		selfReport()
		return
	}
	want := map[string]bool{"http": true, "grpc": true, "tcp": true}
	if len(os.Args) > 1 {
		want = map[string]bool{}
		for _, a := range os.Args[1:] {
			want[a] = true
		}
	}
	if want["http"] {
		go serveHTTP()
	}
	if want["grpc"] {
		go serveGRPC()
	}
	if want["tcp"] {
		serveTCP()
	}
	select {}
}

func serveHTTP() {
	{
		log.Fatal(http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code, err := strconv.Atoi(read("/tmp/http-code", "200"))
			if err != nil {
				code = 200
			}
			w.WriteHeader(code)
		})))
	}
}

func serveGRPC() {
	{
		l, err := net.Listen("tcp", ":9090")
		if err != nil {
			log.Fatal(err)
		}
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health{})
		log.Fatal(s.Serve(l))
	}
}

func serveTCP() {
	var tcp net.Listener
	for {
		_, err := os.Stat("/tmp/tcp-open")
		switch {
		case err == nil && tcp == nil:
			if tcp, err = net.Listen("tcp", ":7000"); err != nil {
				log.Fatal(err)
			}
			go func(l net.Listener) {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}(tcp)
		case err != nil && tcp != nil:
			tcp.Close()
			tcp = nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
