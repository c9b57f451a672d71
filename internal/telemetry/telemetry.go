// Package telemetry serves a daemon's Prometheus metrics over HTTP
// (telemetry_port, /metrics), with the Go runtime's and the process's own
// metrics beside the daemon's.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/godaos/godaos/internal/daoserr"
)

// Server is a running metrics endpoint.
type Server struct {
	http *http.Server
	addr string
	done chan struct{}
}

// NewRegistry is a registry holding the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve serves reg's metrics at http://addr/metrics until Shutdown.
func Serve(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Busy, err, "telemetry listener on %s", addr).
			WithResolution("another process uses the port: choose another telemetry_port")
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{log}}))
	s := &Server{http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, addr: l.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("telemetry stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the metrics are served on.
func (s *Server) Addr() string { return s.addr }

// Shutdown stops serving.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	<-s.done
	return err
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Warn("metrics", "err", v) }
