package gittest

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Work is a git working tree driven with the git CLI, as a person pushing
// to the repository would. Its git runs with a configuration of its own
// (no system or user configuration).
type Work struct {
	// Dir is the working tree.
	Dir string

	tb  testing.TB
	env []string
}

// NewWork makes a working tree on branch main whose origin is remote (an
// HTTP or file URL). It does not fetch: use it to push into an empty
// repository, or call Git("pull") yourself.
func NewWork(tb testing.TB, remote string) *Work {
	tb.Helper()
	home := tb.TempDir()
	w := &Work{Dir: tb.TempDir(), tb: tb, env: []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Test Author",
		"GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Test Author",
		"GIT_COMMITTER_EMAIL=author@example.com",
	}}
	w.Git("init", "--quiet", "--initial-branch=main")
	w.Git("remote", "add", "origin", remote)
	return w
}

// Clone clones remote into a new working tree.
func Clone(tb testing.TB, remote string) *Work {
	tb.Helper()
	w := NewWork(tb, remote)
	w.Git("fetch", "--quiet", "origin")
	w.Git("checkout", "--quiet", "-B", "main", "origin/main")
	return w
}

// Git runs git in the working tree and returns its trimmed standard
// output; the test fails if git does.
func (w *Work) Git(args ...string) string {
	w.tb.Helper()
	return runGit(w.tb, w.Dir, w.env, args...)
}

// GitStdin runs git with input on its standard input and returns its
// trimmed standard output.
func (w *Work) GitStdin(input string, args ...string) string {
	w.tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), w.env...)
	cmd.Stdin = strings.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		w.tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TamperHead replaces HEAD with a copy of it whose message is changed but
// whose signature is kept, as an attacker rewriting a signed commit would,
// and returns the forged commit's hash. Push it with Git("push", "-f", ...).
func (w *Work) TamperHead(newMessage string) string {
	w.tb.Helper()
	raw := w.Git("cat-file", "commit", "HEAD")
	head, _, ok := strings.Cut(raw, "\n\n")
	if !ok {
		w.tb.Fatalf("no message in commit:\n%s", raw)
	}
	forged := w.GitStdin(head+"\n\n"+newMessage+"\n", "hash-object", "-t", "commit", "-w", "--stdin")
	w.Git("update-ref", "HEAD", forged)
	return forged
}

// TryGit runs git and returns its combined output and error, for commands
// that are expected to fail.
func (w *Work) TryGit(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), w.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// WriteFile writes content to rel (slash-separated, relative to the working
// tree), making its directories.
func (w *Work) WriteFile(rel, content string) {
	w.tb.Helper()
	p := filepath.Join(w.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.tb.Fatal(err)
	}
}

// CopyDir copies the directory src of the host into rel in the working
// tree.
func (w *Work) CopyDir(src, rel string) {
	w.tb.Helper()
	dst := filepath.Join(w.Dir, filepath.FromSlash(rel))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, r)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		w.tb.Fatalf("copy %s into the working tree: %v", src, err)
	}
}

// Commit stages everything and commits it (signed if a signing key is
// set), and returns the new commit's hash.
func (w *Work) Commit(msg string) string {
	w.tb.Helper()
	w.Git("add", "-A")
	w.Git("commit", "--quiet", "--allow-empty", "-m", msg)
	return w.Git("rev-parse", "HEAD")
}

// Push pushes main to origin.
func (w *Work) Push() {
	w.tb.Helper()
	w.Git("push", "--quiet", "origin", "HEAD:refs/heads/main")
}

// CommitAndPush writes files (path to content), commits and pushes, and
// returns the new commit's hash.
func (w *Work) CommitAndPush(msg string, files map[string]string) string {
	w.tb.Helper()
	for p, c := range files {
		w.WriteFile(p, c)
	}
	h := w.Commit(msg)
	w.Push()
	return h
}

// SignWithSSH makes later commits signed with the SSH key, as
// `git config gpg.format ssh` does.
func (w *Work) SignWithSSH(k *SSHKey) {
	w.tb.Helper()
	w.Git("config", "gpg.format", "ssh")
	w.Git("config", "user.signingkey", k.PrivateFile)
	w.Git("config", "commit.gpgsign", "true")
}

// SignWithGPG makes later commits signed with the OpenPGP key.
func (w *Work) SignWithGPG(k *GPGKey) {
	w.tb.Helper()
	w.env = append(w.env, "GNUPGHOME="+k.Home)
	w.Git("config", "gpg.format", "openpgp")
	w.Git("config", "user.signingkey", k.Fingerprint)
	w.Git("config", "commit.gpgsign", "true")
}

// Unsigned makes later commits unsigned.
func (w *Work) Unsigned() {
	w.tb.Helper()
	w.Git("config", "commit.gpgsign", "false")
}

func runGit(tb testing.TB, dir string, env []string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
