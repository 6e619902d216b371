package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Errors a *SignatureError wraps.
var (
	// ErrUnsigned: the commit carries no signature.
	ErrUnsigned = errors.New("commit is not signed")
	// ErrUntrusted: the signature is well formed but made by no trusted key,
	// or it does not match the commit.
	ErrUntrusted = errors.New("signature does not verify against any trusted key")
	// ErrMalformedSignature: the signature cannot be parsed, is of an
	// unsupported type, or there is more than one.
	ErrMalformedSignature = errors.New("malformed or unsupported signature")
)

// SignatureError says why a commit was refused.
type SignatureError struct {
	// Commit is the refused commit's hash.
	Commit string
	// Err is ErrUnsigned, ErrUntrusted or ErrMalformedSignature, possibly
	// wrapped with detail.
	Err error
}

// Error describes the refusal in a sentence.
func (e *SignatureError) Error() string {
	return fmt.Sprintf("commit %s refused: %v", e.Commit, e.Err)
}

// Unwrap returns the reason.
func (e *SignatureError) Unwrap() error { return e.Err }

// Verifier checks commit signatures against trusted keys: OpenPGP public
// keys and SSH public keys. A commit is accepted when one trusted key made
// its (single) signature over the commit as git signs it.
type Verifier struct {
	pgp openpgp.EntityList
	ssh []ssh.PublicKey
}

// NewVerifier parses trusted keys. Each element is the content of one key
// file: an ASCII-armored OpenPGP public key block (or several), or SSH
// public keys in authorized_keys form, one a line (blank lines and # comments
// allowed).
func NewVerifier(keys ...[]byte) (*Verifier, error) {
	v := &Verifier{}
	for i, k := range keys {
		trimmed := bytes.TrimSpace(k)
		if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
			el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(trimmed))
			if err != nil {
				return nil, fmt.Errorf("read OpenPGP key %d: %w", i+1, err)
			}
			v.pgp = append(v.pgp, el...)
			continue
		}
		rest := trimmed
		for len(bytes.TrimSpace(rest)) > 0 {
			pub, _, _, r, err := ssh.ParseAuthorizedKey(rest)
			if err != nil {
				return nil, fmt.Errorf("read SSH key %d: %w", i+1, err)
			}
			v.ssh = append(v.ssh, pub)
			rest = r
		}
	}
	if len(v.pgp)+len(v.ssh) == 0 {
		return nil, errors.New("make signature verifier: no trusted keys")
	}
	return v, nil
}

// LoadVerifier reads trusted keys from files (see NewVerifier).
func LoadVerifier(files ...string) (*Verifier, error) {
	keys := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read trusted key: %w", err)
		}
		keys = append(keys, b)
	}
	v, err := NewVerifier(keys...)
	if err != nil {
		return nil, fmt.Errorf("load trusted keys %s: %w", strings.Join(files, ", "), err)
	}
	return v, nil
}

// Verify checks c's signature and returns a description of the key that
// made it. Failures are *SignatureError.
func (v *Verifier) Verify(c *object.Commit) (string, error) {
	fail := func(err error) (string, error) { return "", &SignatureError{Commit: c.Hash.String(), Err: err} }
	sig := strings.TrimSpace(c.PGPSignature)
	if sig == "" {
		return fail(ErrUnsigned)
	}
	if strings.Count(sig, "-----BEGIN ") > 1 {
		return fail(fmt.Errorf("%w: more than one signature", ErrMalformedSignature))
	}
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return fail(fmt.Errorf("encode commit without its signature: %w", err))
	}
	r, err := payload.Reader()
	if err != nil {
		return fail(err)
	}
	msg, err := io.ReadAll(r)
	if err != nil {
		return fail(err)
	}
	switch {
	case strings.HasPrefix(sig, "-----BEGIN PGP SIGNATURE-----"):
		return v.verifyPGP(msg, sig, fail)
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return v.verifySSH(msg, sig, fail)
	}
	return fail(fmt.Errorf("%w: unknown signature type", ErrMalformedSignature))
}

func (v *Verifier) verifyPGP(msg []byte, sig string, fail func(error) (string, error)) (string, error) {
	if len(v.pgp) == 0 {
		return fail(fmt.Errorf("%w: OpenPGP signature and no trusted OpenPGP key", ErrUntrusted))
	}
	signer, err := openpgp.CheckArmoredDetachedSignature(v.pgp, bytes.NewReader(msg), strings.NewReader(sig), nil)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrUntrusted, err))
	}
	desc := "openpgp " + strings.ToUpper(fmt.Sprintf("%x", signer.PrimaryKey.Fingerprint))
	for name := range signer.Identities {
		desc += " " + name
		break
	}
	return desc, nil
}

// sshNamespace is the namespace git signs commits in (git config
// gpg.ssh.* and ssh-keygen -Y sign -n git).
const sshNamespace = "git"

// verifySSH checks an armored SSH signature (PROTOCOL.sshsig) with
// github.com/hiddeco/sshsig, the implementation Flux uses: parsing, the
// namespace, the hash algorithm and the signature itself are its work; this
// function only decides which key is trusted.
func (v *Verifier) verifySSH(msg []byte, armored string, fail func(error) (string, error)) (string, error) {
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return fail(fmt.Errorf("%w: SSH signature: %v", ErrMalformedSignature, err))
	}
	if sig.Namespace != sshNamespace {
		return fail(fmt.Errorf("%w: SSH signature namespace %q, want %q", ErrUntrusted, sig.Namespace, sshNamespace))
	}
	fp := ssh.FingerprintSHA256(sig.PublicKey)
	var trusted ssh.PublicKey
	for _, k := range v.ssh {
		if bytes.Equal(k.Marshal(), sig.PublicKey.Marshal()) {
			trusted = k
			break
		}
	}
	if trusted == nil {
		return fail(fmt.Errorf("%w: SSH key %s", ErrUntrusted, fp))
	}
	if err := sshsig.Verify(bytes.NewReader(msg), sig, trusted, sig.HashAlgorithm, sshNamespace); err != nil {
		if errors.Is(err, sshsig.ErrUnsupportedHashAlgorithm) || errors.Is(err, sshsig.ErrUnavailableHashAlgorithm) {
			return fail(fmt.Errorf("%w: SSH signature by %s: %v", ErrMalformedSignature, fp, err))
		}
		return fail(fmt.Errorf("%w: SSH signature by %s: %v", ErrUntrusted, fp, err))
	}
	return "ssh " + fp, nil
}
