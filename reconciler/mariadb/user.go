package mariadb

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// UserSpec is the spec of a mariadb.user resource (ID
// mariadb.user:<user>@<host>).
type UserSpec struct {
	User string `json:"user"`
	// Host is the account's host part (default localhost); stored and
	// compared lower case.
	Host string `json:"host,omitempty"`
	// Ensure is present (default) or absent (DROP USER: destructive).
	Ensure reconciler.Ensure `json:"ensure,omitempty"`
	// Plugin is mysql_native_password (default), ed25519 or unix_socket.
	Plugin string `json:"plugin,omitempty"`
	// Password is required unless Plugin is unix_socket.
	Password *reconciler.SecretRef `json:"password,omitempty"`
	// Limits are the account's resource limits; a limit left out is 0,
	// no limit, and is enforced as such.
	Limits Limits `json:"limits"`
	Server Server `json:"server"`
}

// Limits are MariaDB's per-account resource limits (0 = none).
type Limits struct {
	MaxConnectionsPerHour int64 `json:"maxConnectionsPerHour,omitempty"`
	MaxQueriesPerHour     int64 `json:"maxQueriesPerHour,omitempty"`
	MaxUpdatesPerHour     int64 `json:"maxUpdatesPerHour,omitempty"`
	MaxUserConnections    int64 `json:"maxUserConnections,omitempty"`
}

// limitField is one limit: its CUE field name, its ALTER USER ... WITH
// option, and its value.
type limitField struct {
	field, option string
	v             int64
}

// fields lists the limits in a fixed order (an array: every plan of a
// user lists them, without allocating).
func (l Limits) fields() [4]limitField {
	return [4]limitField{
		{"limits.maxQueriesPerHour", "MAX_QUERIES_PER_HOUR", l.MaxQueriesPerHour},
		{"limits.maxUpdatesPerHour", "MAX_UPDATES_PER_HOUR", l.MaxUpdatesPerHour},
		{"limits.maxConnectionsPerHour", "MAX_CONNECTIONS_PER_HOUR", l.MaxConnectionsPerHour},
		{"limits.maxUserConnections", "MAX_USER_CONNECTIONS", l.MaxUserConnections},
	}
}

// with renders the WITH clause for all limits (integers, no placeholder
// needed or possible).
func (l Limits) with() string {
	var b strings.Builder
	b.WriteString(" WITH")
	for _, f := range l.fields() {
		b.WriteString(" " + f.option + " " + strconv.FormatInt(f.v, 10))
	}
	return b.String()
}

// UserKind implements mariadb.user.
type UserKind struct{ k *Kinds }

var (
	_ reconciler.KindOf[UserSpec]     = (*UserKind)(nil)
	_ reconciler.SpecPruner[UserSpec] = (*UserKind)(nil)
	_ reconciler.Previewer            = (*UserKind)(nil)
)

// Kind returns "mariadb.user".
func (*UserKind) Kind() string { return "mariadb.user" }

// Close closes the MariaDB connection pools the kinds share.
func (k *UserKind) Close() error { return k.k.Close() }

// Check checks the spec (no I/O) and lower-cases the host.
func (*UserKind) Check(r *reconciler.Resource, s *UserSpec) error {
	s.Host = strings.ToLower(s.Host)
	if err := s.check(r); err != nil {
		return fmt.Errorf("%s: %w", r.ID, err)
	}
	return nil
}

func (s *UserSpec) check(r *reconciler.Resource) error {
	switch {
	case s.User == "" && !s.Ensure.Absent():
		return fmt.Errorf("user \"\" (an anonymous account) can only be declared absent (ensure: absent)")
	case s.User == "":
	default:
		if err := checkUser(s.User); err != nil {
			return err
		}
	}
	if err := checkHost(s.Host); err != nil {
		return err
	}
	if !sameAccount(r.Name(), s.User, s.Host) {
		return fmt.Errorf("ID name %q differs from user@host %q", r.Name(), s.User+"@"+s.Host)
	}
	switch s.Plugin {
	case pluginNative, pluginEd:
		if !s.Ensure.Absent() && (s.Password == nil || s.Password.IsZero()) {
			return fmt.Errorf("plugin %s needs a password secret", s.Plugin)
		}
	case pluginSocket:
		if s.Password != nil {
			return fmt.Errorf("plugin unix_socket takes no password")
		}
	default:
		return fmt.Errorf("plugin %q: want mysql_native_password, ed25519 or unix_socket", s.Plugin)
	}
	for _, f := range s.Limits.fields() {
		if f.v < 0 {
			return fmt.Errorf("%s is negative", f.field)
		}
	}
	return s.Server.validate()
}

// Preview: dropping an account is destructive, anything else safe.
func (*UserKind) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil || absentIn(new) {
		return reconciler.Destructive, "drop user"
	}
	return reconciler.Safe, ""
}

// desiredAuth resolves the password and hashes it locally. known is false
// when there is no resolver (a plan made away from the node): the password
// cannot be compared then and is left alone.
func desiredAuth(ctx context.Context, env *reconciler.Env, s *UserSpec) (auth string, known bool, err error) {
	if s.Plugin == pluginSocket {
		return "", true, nil
	}
	if env == nil || env.Secrets == nil {
		return "", false, nil
	}
	sec, err := env.Secrets.Resolve(ctx, *s.Password)
	if err != nil {
		return "", false, fmt.Errorf("resolve password: %w", err)
	}
	a, ok := authString(s.Plugin, sec.Reveal())
	if !ok {
		return "", false, nil
	}
	return a, true, nil
}

// identified renders IDENTIFIED VIA plugin [USING 'auth'].
func identified(plugin, auth string) (string, error) {
	if plugin == pluginSocket {
		return " IDENTIFIED VIA unix_socket", nil
	}
	lit, err := authLiteral(auth)
	if err != nil {
		return "", err
	}
	return " IDENTIFIED VIA " + plugin + " USING " + lit, nil
}

// Plan observes the account (one mysql.global_priv read shared by the run,
// or of this account's rows, see observation) and diffs plugin, password (by locally computed hash) and limits.
func (k *UserKind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *UserSpec) (*reconciler.Plan, error) {
	c, err := k.k.pools.get(s.Server, env)
	if err != nil {
		return nil, err
	}
	key := accountKey{s.User, s.Host}
	accts, err := c.account(ctx, env, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	acct := account(s.User, s.Host)
	got, exists := accts[key]
	p := &reconciler.Plan{Observed: make(map[string]string, 7)}
	p.Observed["exists"] = strconv.FormatBool(exists)
	if exists {
		p.Observed["plugin"] = got.Plugin
		for _, f := range got.Limits.fields() {
			p.Observed[f.field] = strconv.FormatInt(f.v, 10)
		}
	}
	if s.Ensure.Absent() {
		return dropPlan(c, func() { c.forgetAccount(env, key) }, r, "user", "DROP USER "+acct, exists, p), nil
	}
	auth, known, err := desiredAuth(ctx, env, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	secretShown := "(none)"
	if s.Password != nil {
		secretShown = "(" + s.Password.String() + ")"
	}
	// The statements are built at apply time: the password may only be
	// known then (a plan made with no resolver).
	resolve := func(ctx context.Context) (string, error) {
		if known {
			return auth, nil
		}
		a, ok, err := desiredAuth(ctx, env, s)
		if err != nil {
			return "", fmt.Errorf("%s: %w", r.ID, err)
		}
		if !ok {
			return "", fmt.Errorf("%s: no secret resolver to set the password", r.ID)
		}
		return a, nil
	}
	if !exists {
		p.Action = reconciler.ActionCreate
		p.Changes = append(p.Changes,
			reconciler.Change{Field: "ensure", Before: "absent", After: "present"},
			reconciler.Change{Field: "plugin", After: s.Plugin},
			reconciler.Change{Field: "password", After: secretShown})
		p.Apply = func(ctx context.Context) error {
			a, err := resolve(ctx)
			if err != nil {
				return err
			}
			id, err := identified(s.Plugin, a)
			if err != nil {
				return fmt.Errorf("%s: %w", r.ID, err)
			}
			defer c.forgetAccount(env, key)
			return redact(c.exec(ctx, r.ID, "CREATE USER "+acct+id+s.Limits.with()), a)
		}
		return p, nil
	}

	var stmts []string
	authChanged := false
	if got.Plugin != s.Plugin {
		p.Changes = append(p.Changes, reconciler.Change{Field: "plugin", Before: got.Plugin, After: s.Plugin})
		authChanged = true
	}
	switch {
	case got.AuthOr:
		p.Changes = append(p.Changes, reconciler.Change{Field: "authentication", Before: "several methods", After: s.Plugin})
		authChanged = true
	case known && got.Auth != auth && got.Plugin == s.Plugin:
		p.Changes = append(p.Changes, reconciler.Change{Field: "password", Before: "(differs)", After: secretShown})
		authChanged = true
	case !known && s.Plugin != pluginSocket:
		p.Observed["password"] = "cannot compare"
	}
	limitsChanged := false
	gotLimits := got.Limits.fields()
	for i, f := range s.Limits.fields() {
		if cur := gotLimits[i].v; cur != f.v {
			p.Changes = append(p.Changes, reconciler.Change{Field: f.field, Before: strconv.FormatInt(cur, 10), After: strconv.FormatInt(f.v, 10)})
			limitsChanged = true
		}
	}
	if !authChanged && !limitsChanged {
		return p, nil
	}
	p.Action = reconciler.ActionUpdate
	if limitsChanged {
		stmts = append(stmts, "ALTER USER "+acct+s.Limits.with())
	}
	p.Apply = func(ctx context.Context) error {
		defer c.forgetAccount(env, key)
		if authChanged {
			a, err := resolve(ctx)
			if err != nil {
				return err
			}
			id, err := identified(s.Plugin, a)
			if err != nil {
				return fmt.Errorf("%s: %w", r.ID, err)
			}
			if err := c.exec(ctx, r.ID, "ALTER USER "+acct+id); err != nil {
				return redact(err, a)
			}
		}
		for _, st := range stmts {
			if err := c.exec(ctx, r.ID, st); err != nil {
				return err
			}
		}
		return nil
	}
	return p, nil
}

// PlanDelete plans DROP USER for an account that left the catalog:
// destructive, so held unless the last applied resource allowed destroy.
func (k *UserKind) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *UserSpec) (*reconciler.Plan, error) {
	c, err := k.k.pools.get(s.Server, env)
	if err != nil {
		return nil, err
	}
	key := accountKey{s.User, s.Host}
	accts, err := c.account(ctx, env, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	_, exists := accts[key]
	return dropPlan(c, func() { c.forgetAccount(env, key) }, r, "user", "DROP USER "+account(s.User, s.Host), exists, &reconciler.Plan{Observed: map[string]string{"exists": strconv.FormatBool(exists)}}), nil
}

// sameAccount reports whether name is user@host (host compared without
// case).
func sameAccount(name, user, host string) bool {
	i := strings.LastIndex(name, "@")
	return i >= 0 && name[:i] == user && strings.EqualFold(name[i+1:], host)
}

// redactedError hides a secret-derived string (an authentication hash)
// that a server message might quote back.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, auth string) error {
	if err == nil || auth == "" || !strings.Contains(err.Error(), auth) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), auth, "[redacted]"), err: err}
}
