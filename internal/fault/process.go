package fault

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
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

// killGroup kills the process and its children and waits for it.
func killGroup(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}
