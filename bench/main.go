// Command bench measures the product on this machine (`make bench`). Each
// section prints its figures, one per line with the unit, and writes them to
// bench/results/<section>.txt. It starts its own PostgreSQL cluster
// (durability off; -durable turns it on) unless DATABASE_URL is set; every
// section gets a fresh database.
//
// Add a section by appending to sections: it receives a fresh migrated
// database and returns its result lines.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gorm.io/gorm"

	"unifi/internal/pgcluster"
	"unifi/models/pg"
)

// env is what a section gets.
type env struct {
	ctx   context.Context
	dbURL string
	db    *gorm.DB
	log   *slog.Logger
	out   io.Writer // progress notes (stderr)
	flags flags
}

// flags are the command line's section options.
type flags struct {
	pagesDB    string // pages: measure this database (already filled by unifi gen) instead of a fresh one
	profileDir string // pages: write a CPU profile of each page's run here
	durable    bool   // start the private cluster with durability on
}

// section is one benchmark; it returns its result lines ("delivery: 5234 tx/s").
type section struct {
	name string
	run  func(e *env) ([]string, error)
}

var sections = []section{
	{"engine", runEngine},
	{"inbound", runInbound},
	{"pages", runPages},
	{"scripts", runScripts},
}

func main() {
	if os.Getenv(remoteChildEnv) == "1" {
		if err := remoteChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench remote:", err)
			os.Exit(1)
		}
		return
	}
	only := flag.String("only", "", "run only these sections (comma-separated)")
	resultsDir := flag.String("results", "bench/results", "folder for the result files")
	var fl flags
	flag.StringVar(&fl.pagesDB, "pages-db", "", "pages: measure this database URL, already filled by `unifi gen --transactions 1000000`,\n"+
		"instead of generating a fresh one (it is kept; use it to iterate without regenerating)")
	flag.StringVar(&fl.profileDir, "profile", "", "pages: write a CPU profile of each page's timed run to this folder")
	flag.BoolVar(&fl.durable, "durable", false, "start the private cluster with durability on (fsync, synchronous commit, full-page writes)")
	flag.Parse()
	if err := run(context.Background(), *only, *resultsDir, fl); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchSharedBuffers is the private cluster's shared_buffers: what a
// production server would be given (PostgreSQL's default of 128 MB is
// smaller than the engine section's working set, and the machine's 2 cores,
// not its memory, are what the targets are set against).
const benchSharedBuffers = "1GB"

func run(ctx context.Context, only, resultsDir string, fl flags) error {
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	needCluster := false
	for _, s := range sections {
		if (len(want) == 0 || want[s.name]) && !(s.name == "pages" && fl.pagesDB != "") {
			needCluster = true
		}
	}
	base := os.Getenv("DATABASE_URL")
	durability := "durability off, shared_buffers " + benchSharedBuffers
	switch {
	case base != "":
		durability = "cluster from DATABASE_URL"
	case fl.durable:
		durability = "durability on, shared_buffers " + benchSharedBuffers
	}
	if base == "" && needCluster {
		fmt.Fprintf(os.Stderr, "starting a private PostgreSQL cluster (%s) ...\n", durability)
		cl, err := pgcluster.Start(ctx, pgcluster.Opts{Fast: !fl.durable, Database: "postgres", SharedBuffers: benchSharedBuffers})
		if err != nil {
			return err
		}
		defer func() { _ = cl.Remove(context.Background()) }()
		base = cl.URL
	}
	if err := os.MkdirAll(resultsDir, 0o755); err != nil {
		return err
	}
	for _, s := range sections {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		loadBefore := loadAvg()
		var lines []string
		var err error
		if s.name == "pages" && fl.pagesDB != "" {
			lines, err = runPagesOn(ctx, fl, fl.pagesDB)
		} else {
			lines, err = runSection(ctx, base, s, fl)
		}
		if err != nil {
			return fmt.Errorf("section %s: %w", s.name, err)
		}
		header := fmt.Sprintf("# %s, %s, %d CPUs, %s/%s, Go %s, %s, load average before %s, after %s\n", s.name,
			time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
			durability, loadBefore, loadAvg())
		body := strings.Join(lines, "\n") + "\n"
		fmt.Print(body)
		if err := os.WriteFile(filepath.Join(resultsDir, s.name+".txt"), []byte(header+body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runSection gives a section a fresh, migrated database.
func runSection(ctx context.Context, base string, s section, fl flags) ([]string, error) {
	admin, err := pg.Open(ctx, base, 2)
	if err != nil {
		return nil, err
	}
	defer closeDB(admin)
	name := fmt.Sprintf("bench_%s_%d", s.name, os.Getpid())
	if err := admin.Exec("DROP DATABASE IF EXISTS " + name).Error; err != nil {
		return nil, err
	}
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		return nil, err
	}
	defer admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	db, err := pg.Open(ctx, u.String(), 40)
	if err != nil {
		return nil, err
	}
	defer closeDB(db)
	if _, err := pg.Migrate(ctx, db); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	return s.run(&env{ctx: ctx, dbURL: u.String(), db: db, log: log, out: os.Stderr, flags: fl})
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

// loadAvg is the machine's 1-minute load average (the machine may be shared:
// the figures only mean something next to it).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}
