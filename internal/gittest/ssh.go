package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// SSHServer serves the repositories of a Server's root over SSH on
// loopback, the way a git host does: the SSH side is golang.org/x/crypto's
// server, and each fetch or push runs git's own git-upload-pack or
// git-receive-pack on the bare repository.
type SSHServer struct {
	// HostKey is the server's public host key, in authorized_keys form;
	// KnownHosts is the known_hosts line for it.
	HostKey    string
	KnownHosts string

	tb   testing.TB
	root string
	ln   net.Listener
	cfg  *ssh.ServerConfig
	wg   sync.WaitGroup
}

// NewSSHServer serves root's repositories to clients holding the private
// key of one of authorized. It stops when the test ends.
func NewSSHServer(tb testing.TB, root string, authorized ...*SSHKey) *SSHServer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, k := range authorized {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Public))
		if err != nil {
			tb.Fatal(err)
		}
		allowed[string(pub.Marshal())] = true
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if allowed[string(key.Marshal())] {
			return nil, nil
		}
		return nil, errors.New("key not authorized")
	}}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &SSHServer{tb: tb, root: root, ln: ln, cfg: cfg}
	s.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	s.KnownHosts = s.KnownHostsName() + " " + s.HostKey
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

// URL returns the ssh:// URL of the repository named name.
func (s *SSHServer) URL(name string) string {
	return fmt.Sprintf("ssh://git@%s/%s", s.ln.Addr(), name)
}

// KnownHostsName is how known_hosts names the server: "[127.0.0.1]:port".
func (s *SSHServer) KnownHostsName() string {
	return fmt.Sprintf("[127.0.0.1]:%d", s.ln.Addr().(*net.TCPAddr).Port)
}

func (s *SSHServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

func (s *SSHServer) serve(c net.Conn) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, reqs)
	}
}

// session runs the one git command a client execs.
func (s *SSHServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			// go-git asks for environment variables first; refuse quietly.
			_ = req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		name, arg, _ := strings.Cut(payload.Command, " ")
		if name != "git-upload-pack" && name != "git-receive-pack" {
			_ = req.Reply(false, nil)
			return
		}
		repo := filepath.Join(s.root, filepath.Clean("/"+strings.Trim(arg, "'\"")))
		_ = req.Reply(true, nil)
		cmd := exec.Command(name, repo)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		code := uint32(0)
		if err := cmd.Run(); err != nil {
			code = 1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = uint32(ee.ExitCode())
			}
			_, _ = io.WriteString(ch.Stderr(), err.Error()+"\n")
		}
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, code)
		_, _ = ch.SendRequest("exit-status", false, status)
		return
	}
}
