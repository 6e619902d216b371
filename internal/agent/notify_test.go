package agent

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
