package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"unifi/internal/fakeremote"
)

// The engine bench's fake remote runs in a child process (this binary with
// BENCH_REMOTE_CHILD=1), so the bench's "rss peak" is the engine's and the
// harness's memory, not also the remote's side of every connection and its
// 130,000 recorded arrivals. The parent asks the child through a small
// control API under /_bench/.

const remoteChildEnv = "BENCH_REMOTE_CHILD"

// remoteChild serves the fake remote until its stdin closes (the parent
// exited or closed it).
func remoteChild() error {
	remote := fakeremote.NewLean()
	var mu sync.Mutex
	changed := make(chan struct{})
	var waiting atomic.Int32
	remote.SetOnApply(func(fakeremote.Arrival) {
		if waiting.Load() == 0 {
			return
		}
		mu.Lock()
		close(changed)
		changed = make(chan struct{})
		mu.Unlock()
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/_bench/applied", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, remote.Applied())
	})
	mux.HandleFunc("/_bench/count", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, len(remote.Arrivals(r.URL.Query().Get("ref"))))
	})
	// wait?ref=R&n=N answers once R has N arrivals (or 504 after 10 s).
	mux.HandleFunc("/_bench/wait", func(w http.ResponseWriter, r *http.Request) {
		ref := r.URL.Query().Get("ref")
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		waiting.Add(1)
		defer waiting.Add(-1)
		timeout := time.After(10 * time.Second)
		for {
			mu.Lock()
			ch := changed
			mu.Unlock()
			if len(remote.Arrivals(ref)) >= n {
				return
			}
			select {
			case <-ch:
			case <-timeout:
				http.Error(w, ref+" did not arrive within 10 s", http.StatusGatewayTimeout)
				return
			}
		}
	})
	// check?want=N with the references one per line in the body: what
	// checkRemote checks, "" when all is well.
	mux.HandleFunc("/_bench/check", func(w http.ResponseWriter, r *http.Request) {
		want, _ := strconv.Atoi(r.URL.Query().Get("want"))
		if v := remote.OrderViolations(); len(v) > 0 {
			fmt.Fprintf(w, "order violated: %s", strings.Join(v[:min(5, len(v))], "; "))
			return
		}
		if d := remote.Duplicates(); len(d) > 0 {
			fmt.Fprintf(w, "%d messages applied twice", len(d))
			return
		}
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			if ref := sc.Text(); ref != "" {
				if n := len(remote.Arrivals(ref)); n != want {
					fmt.Fprintf(w, "%s: %d messages arrived, want %d", ref, n, want)
					return
				}
			}
		}
	})
	mux.HandleFunc("/_bench/duplicates", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, len(remote.Duplicates()))
	})
	mux.HandleFunc("/_bench/rss", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, peakRSSMB())
	})
	mux.Handle("/", remote)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("http://%s\n", ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return http.Serve(ln, mux)
}

// childRemote is the parent's handle on the remote child process.
type childRemote struct {
	url   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ctl   *http.Client
}

func startChildRemote(ctx context.Context) (*childRemote, error) {
	url, cmd, stdin, err := startChild(ctx, remoteChildEnv+"=1")
	if err != nil {
		return nil, fmt.Errorf("remote child: %w", err)
	}
	return &childRemote{url: url, cmd: cmd, stdin: stdin, ctl: &http.Client{Timeout: 30 * time.Second}}, nil
}

// startChild runs this binary again with env set (which makes it a child:
// the fake remote, the Jira simulator) and returns the URL the child prints
// on its first line; closing stdin ends it.
func startChild(ctx context.Context, env string) (string, *exec.Cmd, io.WriteCloser, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return "", nil, nil, err
	}
	return strings.TrimSpace(line), cmd, stdin, nil
}

func (c *childRemote) close() {
	_ = c.stdin.Close()
	_ = c.cmd.Wait()
}

func (c *childRemote) get(path string, q url.Values) (string, error) {
	resp, err := c.ctl.Get(c.url + path + "?" + q.Encode())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func (c *childRemote) int(path string, q url.Values) (int64, error) {
	s, err := c.get(path, q)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// applied is how many messages the remote applied.
func (c *childRemote) applied() (int64, error) { return c.int("/_bench/applied", nil) }

// count is how many messages arrived for a ticket reference.
func (c *childRemote) count(ref string) (int64, error) {
	return c.int("/_bench/count", url.Values{"ref": {ref}})
}

// wait returns once ref has n arrivals (an error after 10 s).
func (c *childRemote) wait(ref string, n int64) error {
	_, err := c.get("/_bench/wait", url.Values{"ref": {ref}, "n": {strconv.FormatInt(n, 10)}})
	return err
}

// duplicates says how many messages were applied twice ("" when none, or
// what went wrong asking).
func (c *childRemote) duplicates() string {
	n, err := c.int("/_bench/duplicates", nil)
	switch {
	case err != nil:
		return err.Error()
	case n > 0:
		return fmt.Sprintf("%d messages applied twice", n)
	}
	return ""
}

// check checks what the remote saw for refs: want messages each, in order,
// none twice.
func (c *childRemote) check(refs []string, want int) error {
	resp, err := c.ctl.Post(c.url+"/_bench/check?want="+strconv.Itoa(want), "text/plain",
		strings.NewReader(strings.Join(refs, "\n")))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return errors.New(s)
	}
	return nil
}
