package mariadb

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"filippo.io/edwards25519"
)

// Authentication plugins fsgit manages.
const (
	pluginNative = "mysql_native_password"
	pluginEd     = "ed25519"
	pluginSocket = "unix_socket"
)

// authString computes, locally, the authentication string MariaDB stores
// in mysql.global_priv for a password under a plugin. fsgit sends this
// string (CREATE USER ... IDENTIFIED VIA plugin USING '...') and compares it
// with the stored one, so the plaintext never leaves this process.
//
//   - mysql_native_password: "*" + upper-case hex of SHA1(SHA1(password)),
//     as PASSWORD() computes it; the empty password is "".
//   - ed25519: the unpadded base64 of the Ed25519 public key whose private
//     scalar is the clamped first half of SHA-512(password), as the
//     auth_ed25519 plugin's ed25519_password() computes it.
//   - unix_socket: no secret, "".
//
// ok is false for a plugin fsgit cannot compute (drift "cannot compare").
func authString(plugin string, password []byte) (s string, ok bool) {
	switch plugin {
	case pluginNative:
		if len(password) == 0 {
			return "", true
		}
		h1 := sha1.Sum(password)
		h2 := sha1.Sum(h1[:])
		return "*" + strings.ToUpper(hex.EncodeToString(h2[:])), true
	case pluginEd:
		h := sha512.Sum512(password)
		sc, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
		if err != nil {
			return "", false
		}
		pk := new(edwards25519.Point).ScalarBaseMult(sc).Bytes()
		return base64.RawStdEncoding.EncodeToString(pk), true
	case pluginSocket:
		return "", true
	}
	return "", false
}
