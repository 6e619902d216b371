// Package secrets provides the node's secret providers: they resolve the
// references of a catalog ({secret: "mariadb/fs_user"}) into values, on the
// node, when a resource needs them during a run, never earlier.
//
// [Files] reads one file per secret from a directory only root can enter,
// and refuses files that others could read. [Age] decrypts age-encrypted
// files kept in the repository with the node's identity. [Chain] asks
// several providers in turn.
//
// Values come back as [reconciler.Secret], which redacts itself in every
// print path (fmt, JSON, slog): redaction is a property of the type, not a
// filter over output. The errors of this package name secrets and paths,
// never values.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// MaxSize caps a secret's size: a secret is a password or a key, and a
// larger file is a mistake.
const MaxSize = 64 << 10

// NotFoundError says where a secret was looked for. It wraps
// [reconciler.ErrSecretNotFound].
type NotFoundError struct {
	// Name is the secret's name.
	Name string
	// Looked lists where it was looked for, one entry per provider.
	Looked []string
}

// Error names the secret and the places looked in.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("secret %s not found (looked for %s)", e.Name, strings.Join(e.Looked, "; "))
}

// Unwrap returns reconciler.ErrSecretNotFound.
func (e *NotFoundError) Unwrap() error { return reconciler.ErrSecretNotFound }

// checkName refuses names that are not a clean relative path: "..",
// absolute paths, empty elements.
func checkName(name string) error {
	if name == "" || !fs.ValidPath(name) || name == "." || strings.Contains(name, `\`) {
		return fmt.Errorf("invalid secret name %q: want a relative path such as mariadb/fs_user", name)
	}
	return nil
}

// readCapped reads r up to MaxSize, refusing more.
func readCapped(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("secret %s is larger than %d bytes", name, MaxSize)
	}
	return b, nil
}

// trimNewline drops one trailing newline, which editors and `echo` add and
// which is never part of a password.
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// Chain resolves a secret with the first provider that has it. A provider
// that has it but fails (a file others can read, a file no identity
// decrypts) stops the chain: falling through would hide the problem.
type Chain []reconciler.SecretResolver

var _ reconciler.SecretResolver = Chain(nil)

// Resolve asks each provider in turn.
func (c Chain) Resolve(ctx context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	nf := &NotFoundError{Name: ref.Secret}
	for _, p := range c {
		s, err := p.Resolve(ctx, ref)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, reconciler.ErrSecretNotFound) {
			return reconciler.Secret{}, err
		}
		var e *NotFoundError
		if errors.As(err, &e) {
			nf.Looked = append(nf.Looked, e.Looked...)
		} else {
			nf.Looked = append(nf.Looked, err.Error())
		}
	}
	if len(nf.Looked) == 0 {
		nf.Looked = []string{"nothing: no secret provider is configured"}
	}
	return reconciler.Secret{}, nf
}
