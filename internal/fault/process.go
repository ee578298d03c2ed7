package fault

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logBuffer keeps a child process's output (every generation's), safe for
// the process's writers and the test reading it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// launch starts cmd in its own process group with its output going to logs,
// and returns a channel closed when it has ended.
func launch(cmd *exec.Cmd, logs *logBuffer) (<-chan struct{}, error) {
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return exited, nil
}

// waitHealthy polls url until it answers 200, the process ends, or 60 s pass.
func waitHealthy(name, url string, exited <-chan struct{}, logs *logBuffer) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		res, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("start %s: the process ended:\n%s", name, tail(logs.String(), 3000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start %s: no answer on %s within 60 s:\n%s", name, url, tail(logs.String(), 3000))
		}
	}
}

// signalAndWait sends sig and waits for the process to end; after 30 s it
// kills it and reports an error.
func signalAndWait(name string, cmd *exec.Cmd, exited <-chan struct{}, sig syscall.Signal) error {
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not end within 30 s of %v", name, sig)
	}
}

// child is the process of a Server or a SimProcess: restartable, its output
// kept across generations.
type child struct {
	mu     sync.Mutex // also guards the owner's own per-generation fields
	cmd    *exec.Cmd
	exited <-chan struct{}
	logs   logBuffer
}

// Logs returns everything the processes wrote.
func (c *child) Logs() string { return c.logs.String() }

// launchLocked starts cmd as the child; with mu held.
func (c *child) launchLocked(name string, cmd *exec.Cmd) (<-chan struct{}, error) {
	if c.cmd != nil {
		return nil, fmt.Errorf("start %s: already running", name)
	}
	exited, err := launch(cmd, &c.logs)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.cmd, c.exited = cmd, exited
	return exited, nil
}

// signal sends sig to the running process and waits for it to end.
func (c *child) signal(t testing.TB, name string, sig syscall.Signal) {
	t.Helper()
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		t.Fatalf("fault: %s is not running", name)
	}
	if err := signalAndWait(name, cmd, exited, sig); err != nil {
		t.Errorf("fault: %v", err)
	}
	c.mu.Lock()
	c.cmd = nil
	c.mu.Unlock()
}

// running reports whether the process is alive.
func (c *child) running() bool {
	c.mu.Lock()
	exited := c.exited
	running := c.cmd != nil
	c.mu.Unlock()
	if !running {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// kill kills the process and its children (the test is over) and waits for it.
func (c *child) kill() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.cmd = nil
	c.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}
