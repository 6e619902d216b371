package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// SecretRef is a reference to a secret, as written in CUE:
// {secret: "mariadb/fs_user"}. It is safe to print, store and diff.
type SecretRef struct {
	// Secret is the secret's name within the node's secret provider.
	Secret string `json:"secret"`
}

// String returns "secret <name>".
func (r SecretRef) String() string { return "secret " + r.Secret }

// IsZero reports whether the reference names no secret.
func (r SecretRef) IsZero() bool { return r.Secret == "" }

// Secret is a resolved secret value. It cannot be printed, logged or
// marshalled by accident: every formatting path yields "[redacted]". The
// value is reached only through Reveal, at the point of use.
//
// The value sits behind a pointer on purpose: when a Secret is a field that
// fmt cannot call methods on (an unexported field of a struct printed with
// %v), fmt prints the pointer's address, never the bytes behind it.
type Secret struct {
	name  string
	value *secretValue
}

// secretValue holds the plaintext; see Secret for why it is a pointer.
type secretValue struct{ b []byte }

// NewSecret wraps a resolved value. Only secret providers call it.
func NewSecret(name string, value []byte) Secret {
	return Secret{name: name, value: &secretValue{b: value}}
}

// Name returns the secret's name, which is not secret.
func (s Secret) Name() string { return s.name }

// Reveal returns the plaintext. Call it only where the value is handed to
// the system that needs it (a SQL placeholder, a file being written).
func (s Secret) Reveal() []byte {
	if s.value == nil {
		return nil
	}
	return s.value.b
}

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer without revealing the value.
func (s Secret) GoString() string { return "reconciler.Secret{[redacted]}" }

// Format implements fmt.Formatter so that every verb, %x included, redacts.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// MarshalJSON implements json.Marshaler without revealing the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// MarshalText implements encoding.TextMarshaler without revealing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// LogValue implements slog.LogValuer without revealing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// SecretResolver resolves secret references on the node, at apply time.
type SecretResolver interface {
	// Resolve returns the secret's value. A secret that does not exist
	// returns an error wrapping ErrSecretNotFound that names the secret.
	Resolve(ctx context.Context, ref SecretRef) (Secret, error)
}

// ErrSecretNotFound is wrapped by resolvers when a secret does not exist.
var ErrSecretNotFound = errors.New("secret not found")
