// Command bench measures the product on this machine (`make bench`). Each
// section prints its figures, one per line with the unit, and writes them to
// bench/results/<section>.txt (engine -history N: engine-history-<N>.txt). It starts its own PostgreSQL cluster
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
	base  string // the cluster's URL, for sections that make more databases (freshEnv)
	dbURL string
	db    *gorm.DB
	log   *slog.Logger
	out   io.Writer // progress notes (stderr)
	flags flags
	// secretKey, when set, seals and opens connection secrets (a database
	// filled by unifi gen has its secrets sealed with DATA_DIR's key).
	secretKey []byte
}

// flags are the command line's section options.
type flags struct {
	pagesDB    string // pages: measure this database (already filled by unifi gen) instead of a fresh one
	profileDir string // pages: write a CPU profile of each page's run here
	durable    bool   // start the private cluster with durability on
	history    int    // engine: measure delivery and the pages with this many transactions in the tables
}

// section is one benchmark; it returns its result lines ("delivery: 5234 tx/s").
// A durable section always runs on a cluster with durability on (starting a
// second private cluster when the others run without); it gets the
// cluster's URL and makes its own databases (freshDB).
type section struct {
	name    string
	run     func(e *env) ([]string, error)
	durable bool
}

var sections = []section{
	{name: "engine", run: runEngine},
	{name: "inbound", run: runInbound},
	{name: "pages", run: runPages},
	{name: "river", run: runRiver, durable: true},
	{name: "scripts", run: runScripts},
	{name: "poll", run: runPoll},
}

func main() {
	if os.Getenv(simChildEnv) == "1" {
		if err := simChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench jira simulator:", err)
			os.Exit(1)
		}
		return
	}
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
	flag.IntVar(&fl.history, "history", 0, "engine: measure delivery and the pages with this many finished transactions in the\n"+
		"tables (unifi gen) against delivery on empty tables, instead of the usual parts")
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
	cls := newClusters(ctx, os.Getenv("DATABASE_URL"), fl.durable)
	defer cls.remove()
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
		durability := cls.describe(s.durable)
		switch {
		case s.name == "pages" && fl.pagesDB != "":
			lines, err = runPagesOn(ctx, fl, fl.pagesDB)
		case s.durable:
			var base string
			if base, err = cls.url(true); err == nil {
				lines, err = s.run(&env{ctx: ctx, base: base, dbURL: base, log: benchLogger(), out: os.Stderr, flags: fl})
			}
		default:
			var base string
			if base, err = cls.url(false); err == nil {
				lines, err = runSection(ctx, base, s, fl)
			}
		}
		if err != nil {
			return fmt.Errorf("section %s: %w", s.name, err)
		}
		header := fmt.Sprintf("# %s, %s, %d CPUs, %s/%s, Go %s, %s, load average before %s, after %s\n", s.name,
			time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
			durability, loadBefore, loadAvg())
		body := strings.Join(lines, "\n") + "\n"
		fmt.Print(body)
		if err := os.WriteFile(filepath.Join(resultsDir, resultFile(s.name, fl)), []byte(header+body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// resultFile names a section's result file: the section's name, and for the
// engine with -history N its own file (engine-history-10m.txt), so that the
// engine's usual figures are not overwritten.
func resultFile(section string, fl flags) string {
	if section != "engine" || fl.history == 0 {
		return section + ".txt"
	}
	n := fmt.Sprint(fl.history)
	switch {
	case fl.history%1000000 == 0:
		n = fmt.Sprintf("%dm", fl.history/1000000)
	case fl.history%1000 == 0:
		n = fmt.Sprintf("%dk", fl.history/1000)
	}
	return "engine-history-" + n + ".txt"
}

// clusters starts the private PostgreSQL clusters on first use: one as
// the flags ask (durability off unless -durable) and, for durable sections,
// one with durability on (the same one under -durable). DATABASE_URL, when
// set, serves both.
type clusters struct {
	ctx     context.Context
	env     string
	durable bool
	started map[bool]*pgcluster.Cluster
}

func newClusters(ctx context.Context, envURL string, durable bool) *clusters {
	return &clusters{ctx: ctx, env: envURL, durable: durable, started: map[bool]*pgcluster.Cluster{}}
}

func (c *clusters) describe(durableSection bool) string {
	switch {
	case c.env != "":
		return "cluster from DATABASE_URL"
	case c.durable || durableSection:
		return "durability on, shared_buffers " + benchSharedBuffers
	}
	return "durability off, shared_buffers " + benchSharedBuffers
}

func (c *clusters) url(durableSection bool) (string, error) {
	if c.env != "" {
		return c.env, nil
	}
	durable := c.durable || durableSection
	if cl := c.started[durable]; cl != nil {
		return cl.URL, nil
	}
	fmt.Fprintf(os.Stderr, "starting a private PostgreSQL cluster (%s) ...\n", c.describe(durableSection))
	cl, err := pgcluster.Start(c.ctx, pgcluster.Opts{Fast: !durable, Database: "postgres", SharedBuffers: benchSharedBuffers})
	if err != nil {
		return "", err
	}
	c.started[durable] = cl
	return cl.URL, nil
}

func (c *clusters) remove() {
	for _, cl := range c.started {
		_ = cl.Remove(context.Background())
	}
}

// runSection gives a section a fresh, migrated database.
func runSection(ctx context.Context, base string, s section, fl flags) ([]string, error) {
	e, drop, err := freshEnv(ctx, base, s.name, fl)
	if err != nil {
		return nil, err
	}
	defer drop()
	e.base = base
	return s.run(e)
}

// freshEnv creates a database named after what on the cluster at base,
// migrated, and opens it; drop closes and drops it.
func freshEnv(ctx context.Context, base, what string, fl flags) (*env, func(), error) {
	dbURL, dropDB, err := freshDB(ctx, base, what)
	if err != nil {
		return nil, nil, err
	}
	db, err := pg.Open(ctx, dbURL, 40)
	if err != nil {
		dropDB()
		return nil, nil, err
	}
	drop := func() { closeDB(db); dropDB() }
	if _, err := pg.Migrate(ctx, db); err != nil {
		drop()
		return nil, nil, err
	}
	return &env{ctx: ctx, dbURL: dbURL, db: db, log: benchLogger(), out: os.Stderr, flags: fl}, drop, nil
}

// freshDB creates an empty database named after what on the cluster at
// base; drop drops it (its connections too).
func freshDB(ctx context.Context, base, what string) (string, func(), error) {
	admin, err := pg.Open(ctx, base, 2)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("bench_%s_%d", what, os.Getpid())
	drop := func() {
		// BENCH_KEEP_DB=1 keeps it, to EXPLAIN the engine's statements on
		// what the bench left behind.
		if os.Getenv("BENCH_KEEP_DB") == "" {
			admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		}
		closeDB(admin)
	}
	if err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
		closeDB(admin)
		return "", nil, err
	}
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		closeDB(admin)
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
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
