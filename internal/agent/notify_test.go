package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgent_SdNotify: the agent tells systemd (through NOTIFY_SOCKET, as
// systemd's Type=notify does) that it is ready, what its status is, and
// that it is stopping.
func TestAgent_SdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sockPath := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sockPath)

	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(prefix string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, prefix) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q notification", prefix)
			}
		}
	}

	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "v1\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.notify = nil // the real sd_notify
	n.start()
	next("READY=1")
	if m := next("STATUS=converged at "); !strings.Contains(m, "converged at") {
		t.Fatalf("status %q", m)
	}
	n.agent.Reload()
	next("RELOADING=1")
	next("READY=1")
	n.stop()
	next("STOPPING=1")
}
