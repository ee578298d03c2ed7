// Package config reads the server's configuration from environment variables,
// once, and reports every problem at the same time.
package config

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"unifi/worker"
)

// Config is everything the server needs from its environment.
type Config struct {
	DatabaseURL     string        // DATABASE_URL (required)
	Addr            string        // ADDR, default :8080
	BaseURL         string        // BASE_URL, default http://localhost:8080; https makes cookies Secure
	DataDir         string        // DATA_DIR, default .data: where generated development keys are kept
	SessionKey      []byte        // SESSION_KEY or SESSION_KEY_FILE: hex, at least 32 bytes; generated in DATA_DIR when unset
	SecretKey       []byte        // SECRET_KEY or SECRET_KEY_FILE: hex, 32 bytes, encrypts connection secrets
	GeneratedKeys   []string      // which keys were generated (for a start-up warning)
	LogFormat       string        // LOG_FORMAT: text (default) or json
	LogLevel        string        // LOG_LEVEL: debug, info (default), warn, error
	Workers         int           // WORKERS, default worker.DefaultWorkers
	WorkerBatch     int           // WORKER_BATCH, default worker.DefaultBatch
	Lease           time.Duration // LEASE_SECONDS, default 30
	PollInterval    time.Duration // POLL_INTERVAL_MS, default 1000
	DBMaxConns      int           // DB_MAX_CONNS, default 30
	PageConcurrency int           // PAGE_CONCURRENCY, default twice GOMAXPROCS: page views rendered at once (handlers/page_turns.go)
	InboundMaxBytes int64         // INBOUND_MAX_BYTES, default 1 MiB
	InstanceName    string        // INSTANCE_NAME, default host-pid: names this process's leases
	LoginRate       float64       // LOGIN_RATE: login form posts per second per client address, default 5 (0 = off)
	APIRate         float64       // API_RATE: API requests per second per client address, default 5000 (0 = off)
	MetricsToken    string        // METRICS_TOKEN: bearer token for /metrics; unset: loopback scrapers only
	// AllowLinkLocalEndpoints (ALLOW_LINK_LOCAL_ENDPOINTS=true) lets a
	// connection's endpoint resolve to a link-local or cloud metadata
	// address (169.254.0.0/16, fd00:ec2::254); refused by default.
	AllowLinkLocalEndpoints bool
	// ClockOffset (CLOCK_OFFSET, a Go duration such as -90s or 10m, at most
	// a day either way; default 0) shifts this process's application clock:
	// the envelope time stamps it sends and what it shows. Never the
	// database's clock, which decides leases and due times. For fault drills
	// (clock skew between two instances, a clock stepped back at a restart).
	ClockOffset     time.Duration
	ScriptTimeout   time.Duration // SCRIPT_TIMEOUT_MS: time limit of one message script run, default 50
	ScriptMemoryMiB int           // SCRIPT_MEMORY_MIB: heap growth that stops a script run, default 64
}

// Secure reports whether cookies must be marked Secure (served over TLS).
func (c Config) Secure() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// Load reads the configuration from getenv. Every problem is reported at once,
// each naming its variable.
func Load(getenv func(string) string) (Config, error) {
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}
	host, _ := os.Hostname()
	c := Config{
		DatabaseURL:  strings.TrimSpace(getenv("DATABASE_URL")),
		Addr:         cmp.Or(getenv("ADDR"), ":8080"),
		BaseURL:      strings.TrimRight(cmp.Or(getenv("BASE_URL"), "http://localhost:8080"), "/"),
		DataDir:      cmp.Or(getenv("DATA_DIR"), ".data"),
		LogFormat:    cmp.Or(getenv("LOG_FORMAT"), "text"),
		LogLevel:     cmp.Or(getenv("LOG_LEVEL"), "info"),
		InstanceName: cmp.Or(getenv("INSTANCE_NAME"), fmt.Sprintf("%s-%d", cmp.Or(host, "unifi"), os.Getpid())),
	}
	if err := checkDatabaseURL(c.DatabaseURL); err != nil {
		bad("DATABASE_URL", "%v", err)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("BASE_URL", "%q is not an http:// or https:// URL", c.BaseURL)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	intVar := func(name string, def, lo, hi int) int {
		raw := getenv(name)
		if raw == "" {
			return def
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < lo || n > hi {
			bad(name, "%q is not a whole number from %d to %d", raw, lo, hi)
			return def
		}
		return n
	}
	c.Workers = intVar("WORKERS", worker.DefaultWorkers, 1, 256)
	c.WorkerBatch = intVar("WORKER_BATCH", worker.DefaultBatch, 1, 1000)
	c.Lease = time.Duration(intVar("LEASE_SECONDS", 30, 2, 3600)) * time.Second
	c.PollInterval = time.Duration(intVar("POLL_INTERVAL_MS", 1000, 10, 60000)) * time.Millisecond
	c.DBMaxConns = intVar("DB_MAX_CONNS", 30, 2, 500)
	c.PageConcurrency = intVar("PAGE_CONCURRENCY", 2*runtime.GOMAXPROCS(0), 1, 1024)
	c.InboundMaxBytes = int64(intVar("INBOUND_MAX_BYTES", 1<<20, 1024, 64<<20))

	c.LoginRate = float64(intVar("LOGIN_RATE", 5, 0, 100000))
	c.APIRate = float64(intVar("API_RATE", 5000, 0, 1000000))
	c.MetricsToken = getenv("METRICS_TOKEN")
	if raw := getenv("ALLOW_LINK_LOCAL_ENDPOINTS"); raw != "" {
		v, err := strconv.ParseBool(raw)
		if err != nil {
			bad("ALLOW_LINK_LOCAL_ENDPOINTS", "%q is not true or false", raw)
		}
		c.AllowLinkLocalEndpoints = v
	}
	if raw := strings.TrimSpace(getenv("CLOCK_OFFSET")); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < -24*time.Hour || d > 24*time.Hour {
			bad("CLOCK_OFFSET", "%q is not a duration from -24h to 24h, e.g. -90s or 10m", raw)
		}
		c.ClockOffset = d
	}
	c.ScriptTimeout = time.Duration(intVar("SCRIPT_TIMEOUT_MS", 50, 1, 10000)) * time.Millisecond
	c.ScriptMemoryMiB = intVar("SCRIPT_MEMORY_MIB", 64, 1, 4096)

	var err error
	if c.SessionKey, err = key(getenv, "SESSION_KEY", 32, c.DataDir, &c.GeneratedKeys); err != nil {
		bad("SESSION_KEY", "%v", err)
	}
	if c.SecretKey, err = key(getenv, "SECRET_KEY", 32, c.DataDir, &c.GeneratedKeys); err != nil {
		bad("SECRET_KEY", "%v", err)
	}
	if len(problems) > 0 {
		return c, errors.New("configuration is not valid:\n  " + strings.Join(problems, "\n  "))
	}
	return c, nil
}

func checkDatabaseURL(raw string) error {
	if raw == "" {
		return errors.New("is not set; give a URL such as postgres://user:password@localhost:5432/unifi")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a valid URL (%v)", errors.Unwrap(err))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("must start with postgres:// (got scheme %q)", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("names no host, e.g. postgres://user@localhost:5432/unifi")
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("names no database, e.g. postgres://user@localhost:5432/unifi")
	}
	return nil
}

// key reads NAME (hex) or NAME_FILE (a file holding hex). When both are unset
// it generates a key once in dataDir/name.key, so development restarts keep it.
func key(getenv func(string) string, name string, size int, dataDir string, generated *[]string) ([]byte, error) {
	raw := strings.TrimSpace(getenv(name))
	if file := getenv(name + "_FILE"); raw == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s_FILE: %v", name, err)
		}
		raw = strings.TrimSpace(string(b))
	}
	if raw == "" {
		path := filepath.Join(dataDir, strings.ToLower(name)+".key")
		if b, err := os.ReadFile(path); err == nil {
			raw = strings.TrimSpace(string(b))
		} else {
			k := make([]byte, size)
			_, _ = rand.Read(k)
			raw = hex.EncodeToString(k)
			if err := os.MkdirAll(dataDir, 0o755); err != nil {
				return nil, fmt.Errorf("store a generated key: %v", err)
			}
			if err := os.WriteFile(path, []byte(raw+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("store a generated key: %v", err)
			}
			*generated = append(*generated, fmt.Sprintf("%s (stored in %s)", name, path))
		}
	}
	k, err := hex.DecodeString(raw)
	if err != nil {
		return nil, errors.New("is not hexadecimal")
	}
	if len(k) < size {
		return nil, fmt.Errorf("is %d bytes; it needs at least %d (%d hex digits)", len(k), size, 2*size)
	}
	return k, nil
}
