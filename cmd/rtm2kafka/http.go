package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsServer serves /metrics, /healthz, /readyz, /status and the console
// (/, /console/*, /api/console, /api/control) on its own mux.
type opsServer struct {
	srv *http.Server
	ln  net.Listener
}

// readiness answers /readyz: nil when ready, a degradedError when ready
// but degraded (200, the reason in the body), else why not.
type readiness func(ctx context.Context) error

// degradedError is a readiness result that is ready but degraded.
type degradedError struct{ why string }

func (e degradedError) Error() string { return "degraded: " + e.why }

// newOpsServer binds addr now (so a bad address stops the start) and serves
// once start is called. con may be nil: no console.
func newOpsServer(addr string, reg *prometheus.Registry, ready readiness, status func() any, con *console, log *slog.Logger) (*opsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_ADDR: listen on %s: %w", addr, err)
	}
	reg.MustRegister(readyGauge(ready))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var deg degradedError
		if err := ready(ctx); errors.As(err, &deg) {
			fmt.Fprintf(w, "ready (degraded: %s)\n", deg.why)
			return
		} else if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status()) // a failed write means the client went away; nothing to do
	})
	if con != nil {
		con.register(mux)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &opsServer{srv: srv, ln: ln}, nil
}

// Addr is the address actually bound (useful with port 0).
func (o *opsServer) Addr() string { return o.ln.Addr().String() }

// serve runs until shutdown; it returns nil after a shutdown.
func (o *opsServer) serve() error {
	if err := o.srv.Serve(o.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

func (o *opsServer) shutdown(ctx context.Context) error { return o.srv.Shutdown(ctx) }

// readyGauge exports what /readyz answers as rtm2kafka_ready, so that an
// alert can see it: 1 when ready (degraded included: the spool answers
// pushes), 0 when not. It asks at scrape time; the Kafka check behind it
// is cached by the bridge, so a scrape costs at most one bounded round trip.
func readyGauge(ready readiness) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "rtm2kafka", Name: "ready",
		Help: "1 while /readyz answers 200 (ready, or degraded and answering from the spool), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var deg degradedError
		if err := ready(ctx); err == nil || errors.As(err, &deg) {
			return 1
		}
		return 0
	})
}
