package secrets

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/fsgit/fsgit/reconciler"
)

// Age resolves the secret "mariadb/fs_user" by decrypting the file
// "mariadb/fs_user.age" of a file system (the site's secrets/ directory, in
// a checkout or in a commit's tree) with the node's identities. Files may
// be binary or armored (age -a).
type Age struct {
	fsys       fs.FS
	where      string
	identities []age.Identity
}

var _ reconciler.SecretResolver = (*Age)(nil)

// NewAge returns a provider over fsys. where describes fsys in messages
// ("sites/example/secrets"). It needs at least one identity to decrypt.
func NewAge(fsys fs.FS, where string, identities ...age.Identity) *Age {
	return &Age{fsys: fsys, where: where, identities: identities}
}

// Resolve decrypts the secret's file. A missing file returns a
// *NotFoundError; a file that none of the identities decrypts fails.
func (a *Age) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	name := ref.Secret
	if err := checkName(name); err != nil {
		return reconciler.Secret{}, err
	}
	file := name + ".age"
	f, err := a.fsys.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return reconciler.Secret{}, &NotFoundError{Name: name, Looked: []string{path.Join(a.where, file)}}
	}
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	defer f.Close()
	if len(a.identities) == 0 {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %s exists but no age identity was given to decrypt it",
			name, path.Join(a.where, file))
	}
	// An encrypted file is the secret plus a small header: cap it at
	// twice the secret's size.
	enc, err := io.ReadAll(io.LimitReader(f, 2*MaxSize))
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: read %s: %w", name, file, err)
	}
	var src io.Reader = bytes.NewReader(enc)
	if bytes.HasPrefix(bytes.TrimSpace(enc), []byte(armor.Header)) {
		src = armor.NewReader(bytes.NewReader(bytes.TrimSpace(enc)))
	}
	r, err := age.Decrypt(src, a.identities...)
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: decrypt %s with this node's identity: %w",
			name, path.Join(a.where, file), err)
	}
	b, err := readCapped(r, name)
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: decrypt %s: %w", name, path.Join(a.where, file), err)
	}
	return reconciler.NewSecret(name, trimNewline(b)), nil
}

// LoadIdentities reads age identities (X25519 keys, as written by
// age-keygen) from a file that others cannot read.
func LoadIdentities(file string) ([]age.Identity, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("load age identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load age identity: %w", err)
	}
	if err := checkPrivate(file, fi, false); err != nil {
		return nil, fmt.Errorf("load age identity: %w", err)
	}
	ids, err := age.ParseIdentities(bufio.NewReader(io.LimitReader(f, MaxSize)))
	if err != nil {
		return nil, fmt.Errorf("load age identity %s: %w", file, err)
	}
	return ids, nil
}
