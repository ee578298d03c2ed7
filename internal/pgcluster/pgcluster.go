// Package pgcluster starts and stops a private PostgreSQL cluster for `make
// run` and for tests. PostgreSQL refuses to run as root, so as root the server
// runs as the "postgres" OS user, which must be able to reach the data folder.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	Dir       string // holds data/, server.log and the socket
	Port      int
	URL       string // postgres://postgres@127.0.0.1:PORT/DB?sslmode=disable
	bindir    string
	asUser    bool   // run commands as the postgres OS user
	pgopts    string // server options given to pg_ctl start
	Relocated string // non-empty when Dir was not reachable and a temp folder is used instead
}

// Opts configures Start.
type Opts struct {
	Dir      string // data folder; created if missing; "" means a new temp folder
	Database string // created if missing; default "unifi"
	Fast     bool   // durability off (tests only)
	// SharedBuffers sets shared_buffers (e.g. "1GB"); "" keeps PostgreSQL's
	// default of 128 MB.
	SharedBuffers string
}

// Start initialises the cluster on first use and starts it on a free port.
func Start(ctx context.Context, opts Opts) (*Cluster, error) {
	bindir, err := findBindir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bindir: bindir, asUser: os.Geteuid() == 0}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "unifi-pg-"); err != nil {
			return nil, fmt.Errorf("make cluster folder: %w", err)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make cluster folder: %w", err)
	}
	if c.asUser {
		if err := ensurePostgresUser(ctx); err != nil {
			return nil, err
		}
		if !c.reachable(ctx, dir) {
			alt := filepath.Join(os.TempDir(), "unifi-pg-"+strings.ReplaceAll(strings.Trim(dir, "/"), "/", "_"))
			c.Relocated = alt
			dir = alt
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("make cluster folder: %w", err)
			}
		}
		if out, err := exec.CommandContext(ctx, "chown", "-R", "postgres:", dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown cluster folder: %v: %s", err, out)
		}
	}
	c.Dir = dir
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if out, err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
			"--locale=C.UTF-8", "--no-sync"); err != nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, out)
		}
	}
	// A cluster left running by a killed run: stop it first.
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		_, _ = c.run(ctx, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		_ = os.Remove(filepath.Join(data, "postmaster.pid"))
	}
	if c.Port, err = freePort(); err != nil {
		return nil, err
	}
	c.pgopts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200", c.Port, dir)
	if opts.Fast {
		c.pgopts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	if opts.SharedBuffers != "" {
		c.pgopts += " -c shared_buffers=" + opts.SharedBuffers
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	db := opts.Database
	if db == "" {
		db = "unifi"
	}
	out, err := c.run(ctx, "psql", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres", "-tAc",
		fmt.Sprintf("SELECT 1 FROM pg_database WHERE datname = '%s'", db), "postgres")
	if err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("look for database: %v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "1" {
		if out, err := c.run(ctx, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres", db); err != nil {
			_ = c.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("createdb: %v: %s", err, out)
		}
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-l", filepath.Join(c.Dir, "server.log"),
		"-w", "-t", "60", "-o", c.pgopts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return fmt.Errorf("start postgres: %v: %s\n%s", err, out, tail(string(log), 2000))
	}
	return nil
}

// Restart starts a stopped cluster again on the same data folder and port,
// so clients reconnect to the URL they had (fault tests stop the database
// under a running server and bring it back).
func (c *Cluster) Restart(ctx context.Context) error {
	return c.start(ctx)
}

// Stop shuts the server down (fast mode: running sessions are ended).
func (c *Cluster) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("stop postgres: %v: %s", err, out)
	}
	return nil
}

// Remove stops the server and deletes its folder.
func (c *Cluster) Remove(ctx context.Context) error {
	err := c.Stop(ctx)
	return errors.Join(err, os.RemoveAll(c.Dir))
}

func (c *Cluster) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	bin := filepath.Join(c.bindir, tool)
	var cmd *exec.Cmd
	if c.asUser {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Dir = "/"
	return cmd.CombinedOutput()
}

// reachable reports whether the postgres user can get to dir: searching its
// parent needs search permission on every folder above (dir itself is chowned).
func (c *Cluster) reachable(ctx context.Context, dir string) bool {
	return exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", "test", "-x", filepath.Dir(dir)).Run() == nil
}

func ensurePostgresUser(ctx context.Context) error {
	if _, err := user.Lookup("postgres"); err == nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, "useradd", "--system", "--home-dir", "/nonexistent", "--shell",
		"/usr/sbin/nologin", "postgres").CombinedOutput()
	if err != nil {
		return fmt.Errorf("create postgres user: %v: %s", err, out)
	}
	return nil
}

func findBindir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries found: install them with `apt-get install -y postgresql`")
}

func versionOf(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Running returns the URL of database on the cluster that Start keeps in dir
// when that cluster is up now (`make run` is running), so a one-shot command
// can use it instead of starting it (Start would stop it first). It looks
// where Start would have put it, including the relocated folder.
func Running(dir, database string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	alt := filepath.Join(os.TempDir(), "unifi-pg-"+strings.ReplaceAll(strings.Trim(abs, "/"), "/", "_"))
	for _, d := range []string{abs, alt} {
		raw, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
		if err != nil {
			continue
		}
		lines := strings.Split(string(raw), "\n")
		if len(lines) < 4 {
			continue
		}
		pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
		port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
		if err1 != nil || err2 != nil || syscall.Kill(pid, 0) != nil {
			continue
		}
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, database), true
	}
	return "", false
}
