// Command emulator runs the identity API emulator: many Auth0-compatible
// tenants on one HTTPS port. See README.md beside this file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/server"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	if err := run(os.Args[1:], os.Stdout, os.Stderr, sig); err != nil {
		fmt.Fprintln(os.Stderr, "emulator:", err)
		os.Exit(1)
	}
}

// run parses args, starts the emulator, prints where its files are to out,
// and serves until stop delivers.
func run(args []string, out, logs io.Writer, stop <-chan os.Signal) error {
	var (
		tenants, legacy listFlag
		cfg             server.Config
	)
	flag := flag.NewFlagSet("emulator", flag.ContinueOnError)
	flag.SetOutput(logs)
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:8443", "TCP address to serve HTTPS on (port 0: any free port, written to DATA/listen-addr)")
	flag.StringVar(&cfg.DataDir, "data", "emulator-data", "data directory: CA, signing key, database, credentials files")
	flag.Var(&tenants, "tenant", "domain of a tenant to create at start unless it exists (repeatable)")
	flag.Var(&legacy, "legacy-tenant", "like -tenant, but the tenant has not opted into the password-flow and profile migrations (repeatable)")
	flag.IntVar(&cfg.RateLimit.Burst, "rate-limit-burst", server.DefaultRateLimit.Burst, "per-tenant burst of requests (0: rate limiting off)")
	flag.Float64Var(&cfg.RateLimit.PerSecond, "rate-limit-per-second", server.DefaultRateLimit.PerSecond, "per-tenant refill in requests per second (0: rate limiting off)")
	authPlan := flag.String("auth-endpoint-limits", "paid", "the Authentication API's per-endpoint limits (per IP, user, email) as the platform documents them for a plan: off, free or paid")
	flag.Float64Var(&cfg.Faults.ErrorRate, "error-rate", 0, "share of tenant requests answered with an injected 5xx (0..1)")
	flag.Float64Var(&cfg.Faults.LostReplyRate, "lost-reply-rate", 0, "share of tenant requests carried out and then answered with an injected 503 (0..1)")
	flag.DurationVar(&cfg.Faults.Latency, "latency", 0, "latency added to every tenant request, e.g. 50ms")
	flag.DurationVar(&cfg.ScriptTimeout, "script-timeout", 20*time.Second, "time limit of one custom database script run")
	verbose := flag.Bool("log-requests", false, "log one line per request to stderr (never secrets)")
	if err := flag.Parse(args); err != nil {
		return err
	}
	limits, ok := server.AuthLimitPlans[*authPlan]
	if !ok {
		return fmt.Errorf("-auth-endpoint-limits must be off, free or paid, not %q", *authPlan)
	}
	cfg.AuthEndpointLimits = limits
	if cfg.Faults.ErrorRate < 0 || cfg.Faults.ErrorRate > 1 {
		return errors.New("-error-rate must be between 0 and 1")
	}
	if cfg.Faults.LostReplyRate < 0 || cfg.Faults.LostReplyRate > 1 {
		return errors.New("-lost-reply-rate must be between 0 and 1")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))

	s, err := server.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, list := range []struct {
		domains  listFlag
		settings map[string]any
	}{{tenants, nil}, {legacy, server.LegacySettings()}} {
		for _, d := range list.domains {
			_, err := s.CreateTenant(d, list.settings)
			if err != nil && !errors.Is(err, server.ErrTenantExists) {
				return fmt.Errorf("create tenant %s: %w", d, err)
			}
		}
	}
	abs, _ := filepath.Abs(cfg.DataDir)
	fmt.Fprintf(out, "identity emulator listening on https://%s\n  CA certificate: %s\n  credentials:    %s/<domain>.json\n  admin token:    %s\n",
		s.Addr(), filepath.Join(abs, "ca.crt"), filepath.Join(abs, server.TenantsDir), filepath.Join(abs, server.AdminTokenFile))

	<-stop
	return nil
}
