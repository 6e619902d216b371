package agent

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// systemd's WatchdogSec=, here 0.3 s.
	t.Setenv("WATCHDOG_USEC", "300000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

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
	// Idle between polls, the apply loop still pings, more than once.
	next("WATCHDOG=1")
	next("WATCHDOG=1")
	if _, ok := os.LookupEnv("WATCHDOG_USEC"); ok {
		t.Error("WATCHDOG_USEC is still set: the agent's children would see it")
	}
	n.agent.Reload()
	next("RELOADING=1")
	next("READY=1")
	n.stop()
	next("STOPPING=1")
}

// TestSystemdNotifier: the agent still reaches systemd's notify socket,
// but what it starts (here a shell, on the fleet's nodes apt-get and the
// package scripts it runs) no longer sees NOTIFY_SOCKET. Before, the
// agent's children inherited it: on the fleet, mariadb-server's postinst
// flooded the journal with "Got notification message from PID ..., but
// reception only permitted for main PID".
func TestSystemdNotifier(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	notify := systemdNotifier()
	out, err := exec.Command("sh", "-c", `printf '%s' "${NOTIFY_SOCKET-unset}"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "unset" {
		t.Fatalf("a child of the agent sees NOTIFY_SOCKET=%q", got)
	}

	notify("READY=1")
	_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := ln.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("systemd's socket got %q, %v; want READY=1", buf[:n], err)
	}
	if _, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		t.Fatal("NOTIFY_SOCKET is still set")
	}
}
