//go:build !lean

package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/schema"
)

// place is where a command acts on this node: the agent's socket, the
// state file read or written when no agent answers, and this node's name.
type place struct {
	socket, state, node string
}

// placeOf resolves where a command acts on this node (status, hold,
// release): from the agent's configuration file when there is one, else
// the defaults (the socket and state file the agent's schema defaults
// to, the host name); --socket and --state win over both. A configuration
// file that exists but cannot be read is an error.
func placeOf(config, socket, statePath string) (place, error) {
	p := place{socket: defaultSocket, state: state.DefaultPath}
	p.node, _ = os.Hostname()
	cfg, err := agent.LoadConfig(schema.Files(), config)
	switch {
	case err == nil:
		p = place{socket: cfg.Socket, state: cfg.StateFile, node: thisNode(cfg)}
	case !errors.Is(err, fs.ErrNotExist):
		return place{}, err
	}
	if socket != "" {
		p.socket = socket
	}
	if statePath != "" {
		p.state = statePath
	}
	return p, nil
}

// defaultSocket is the agent's socket when its configuration does not
// say (schema/agent.cue).
const defaultSocket = "/run/fsgit/fsgit.sock"
