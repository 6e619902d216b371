package agent

import (
	"net"
	"os"
)

// systemdNotifier returns the function that sends sd_notify messages to
// systemd (READY=1, RELOADING=1, STATUS=...), and takes NOTIFY_SOCKET out
// of the process's environment, so that no process the agent starts
// inherits it: apt-get's package scripts start daemons (mariadbd
// --bootstrap) that would notify on the agent's behalf, which systemd
// refuses with a warning per message under NotifyAccess=main, and obeys
// under NotifyAccess=all. Without NOTIFY_SOCKET it does nothing.
func systemdNotifier() func(string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return func(string) {}
	}
	_ = os.Unsetenv("NOTIFY_SOCKET")
	addr := &net.UnixAddr{Name: sock, Net: "unixgram"}
	return func(state string) {
		c, err := net.DialUnix("unixgram", nil, addr)
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(state))
	}
}
