package account

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// UserKindName is the user kind's name in resource IDs: "user:deploy".
const UserKindName = "user"

// UserSpec is the user resource's spec, as written in CUE. The schema fills
// in every default (group, home, shell, manageHome).
type UserSpec struct {
	// Name is the login; empty means the resource's name.
	Name string `json:"name,omitempty"`
	// Ensure is "present" (default) or "absent".
	Ensure reconciler.Ensure `json:"ensure,omitempty"`
	// UID pins the user's id; nil leaves it to useradd.
	UID *int `json:"uid,omitempty"`
	// Group is the primary group (default: the user's name; created with
	// the user when it does not exist and has that name).
	Group string `json:"group,omitempty"`
	// Groups are the supplementary groups, exactly these.
	Groups []string `json:"groups,omitempty"`
	// Home is the home directory (default /home/<name>).
	Home string `json:"home,omitempty"`
	// ManageHome creates the home directory with the user (default true).
	ManageHome bool `json:"manageHome,omitempty"`
	// Shell is the login shell (default /bin/bash).
	Shell string `json:"shell,omitempty"`
	// System makes useradd pick a system uid. It matters at creation only.
	System bool `json:"system,omitempty"`
	// Comment is the GECOS field; nil leaves it alone.
	Comment *string `json:"comment,omitempty"`
	// AuthorizedKeys are exactly the lines of <home>/.ssh/authorized_keys.
	// The file is left alone when the list is empty and the file absent.
	AuthorizedKeys []string `json:"authorizedKeys,omitempty"`
}

// User is the user kind.
type User struct{}

var (
	_ reconciler.KindOf[UserSpec]     = (*User)(nil)
	_ reconciler.SpecPruner[UserSpec] = (*User)(nil)
)

// NewUser returns the user kind.
func NewUser() *reconciler.Typed[UserSpec] { return reconciler.NewTyped(&User{}) }

// Kind returns "user".
func (u *User) Kind() string { return UserKindName }

// Check takes the name from the ID when the spec has none, keeps
// /etc/passwd's fields whole, and sorts the supplementary groups. Names,
// the uid's range and the paths' shape are the schema's (#Name, #User,
// #AbsPath).
func (u *User) Check(r *reconciler.Resource, s *UserSpec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("validate %s: %s", r.ID, fmt.Sprintf(format, a...))
	}
	if s.Name == "" {
		s.Name = r.Name()
	}
	// ':' separates /etc/passwd's fields and a newline its entries: the
	// schema's #AbsPath and comment allow both.
	for field, p := range map[string]string{"home": s.Home, "shell": s.Shell} {
		if strings.ContainsAny(p, ":\n") {
			return bad("%s %q may not hold ':' or a newline", field, p)
		}
	}
	if s.Comment != nil && strings.ContainsAny(*s.Comment, ":\n") {
		return bad("comment may not hold ':' or a newline")
	}
	for i, k := range s.AuthorizedKeys {
		// The schema's #SSHPublicKey lets a carriage return through, which
		// would end the line in authorized_keys.
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, "\n\r") {
			return bad("authorizedKeys[%d] is not one key line", i)
		}
		s.AuthorizedKeys[i] = k
	}
	slices.Sort(s.Groups)
	s.Groups = slices.Compact(s.Groups)
	return nil
}

// Plan compares the user with the run's /etc/passwd and /etc/group
// snapshot and with its authorized_keys file.
func (u *User) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *UserSpec) (*reconciler.Plan, error) {
	d, err := observe(env)
	if err != nil {
		return nil, err
	}
	cur, exists := d.users[s.Name]
	p := &reconciler.Plan{Observed: map[string]string{"ensure": ensureAbsent}}

	switch {
	case s.Ensure.Absent() && !exists:
		return p, nil
	case s.Ensure.Absent():
		p.Observed = observedUser(d, cur, nil)
		return deletePlan(env, r, p, "userdel", s.Name), nil
	case !exists:
		return u.createPlan(env, r, d, s, p), nil
	}

	// The user exists: diff it field by field. Keys are compared where
	// they will be: in the new home if it moves.
	keys, err := readKeys(env, s.Home)
	if err != nil {
		return nil, fmt.Errorf("observe %s: %w", r.ID, err)
	}
	p.Observed = observedUser(d, cur, keys)
	var argv []string
	add := func(c reconciler.Change, flag, value string) {
		p.Changes = append(p.Changes, c)
		argv = append(argv, flag, value)
	}
	if s.UID != nil && *s.UID != cur.uid {
		// Files keep the old uid, running processes too.
		add(reconciler.Change{Field: "uid", Before: strconv.Itoa(cur.uid), After: strconv.Itoa(*s.UID), Class: reconciler.Disruptive}, "-u", strconv.Itoa(*s.UID))
	}
	if g := d.groupName(cur.gid); g != s.Group {
		add(reconciler.Change{Field: "group", Before: g, After: s.Group, Class: reconciler.Safe}, "-g", s.Group)
	}
	if have := d.memberOf(s.Name); !slices.Equal(have, s.Groups) {
		add(reconciler.Change{Field: "groups", Before: strings.Join(have, ","), After: strings.Join(s.Groups, ","), Class: reconciler.Safe}, "-G", strings.Join(s.Groups, ","))
	}
	if cur.home != s.Home {
		add(reconciler.Change{Field: "home", Before: cur.home, After: s.Home, Class: reconciler.Safe}, "-d", s.Home)
	}
	if cur.shell != s.Shell {
		add(reconciler.Change{Field: "shell", Before: cur.shell, After: s.Shell, Class: reconciler.Safe}, "-s", s.Shell)
	}
	if s.Comment != nil && cur.comment != *s.Comment {
		add(reconciler.Change{Field: "comment", Before: cur.comment, After: *s.Comment, Class: reconciler.Safe}, "-c", *s.Comment)
	}
	wantUID := cur.uid
	if s.UID != nil {
		wantUID = *s.UID
	}
	wantGID := cur.gid
	if g, ok := d.groups[s.Group]; ok {
		wantGID = g.gid
	}
	writeKeys := false
	if before, diff := keys.diff(s.AuthorizedKeys, wantUID, wantGID); diff {
		writeKeys = true
		p.Changes = append(p.Changes, reconciler.Change{Field: "authorizedKeys", Before: before, After: describeKeys(s.AuthorizedKeys), Class: reconciler.Safe})
	}
	if len(p.Changes) == 0 {
		return p, nil
	}
	p.Action = reconciler.ActionUpdate
	p.Apply = func(ctx context.Context) error {
		if len(argv) > 0 {
			full := append(append([]string{"usermod"}, argv...), "--", s.Name)
			if err := runLocked(ctx, env, full...); err != nil {
				return fmt.Errorf("apply %s: %w", r.ID, err)
			}
		}
		if writeKeys {
			if err := applyKeys(env, s); err != nil {
				return fmt.Errorf("apply %s: %w", r.ID, err)
			}
		}
		return nil
	}
	return p, nil
}

// createPlan plans useradd and, when keys are wanted, their file.
func (u *User) createPlan(env *reconciler.Env, r *reconciler.Resource, d *db, s *UserSpec, p *reconciler.Plan) *reconciler.Plan {
	p.Action = reconciler.ActionCreate
	p.Changes = []reconciler.Change{{Field: "ensure", Before: ensureAbsent, After: ensurePresent, Class: reconciler.Safe}}
	if len(s.AuthorizedKeys) > 0 {
		p.Changes = append(p.Changes, reconciler.Change{Field: "authorizedKeys", Before: "absent", After: describeKeys(s.AuthorizedKeys), Class: reconciler.Safe})
	}
	p.Apply = func(ctx context.Context) error {
		argv := []string{"useradd"}
		if s.UID != nil {
			argv = append(argv, "-u", strconv.Itoa(*s.UID))
		}
		// The primary group is looked up at apply time: a group resource
		// that this user requires may have created it since the plan.
		now, err := hostFiles.read()
		if err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		switch _, ok := now.groups[s.Group]; {
		case ok:
			argv = append(argv, "-N", "-g", s.Group)
		case s.Group == s.Name:
			argv = append(argv, "-U")
		default:
			return fmt.Errorf("apply %s: primary group %q does not exist (require its group resource)", r.ID, s.Group)
		}
		if len(s.Groups) > 0 {
			argv = append(argv, "-G", strings.Join(s.Groups, ","))
		}
		argv = append(argv, "-d", s.Home, "-s", s.Shell)
		if s.ManageHome {
			argv = append(argv, "-m")
		} else {
			argv = append(argv, "-M")
		}
		if s.System {
			argv = append(argv, "-r")
		}
		if s.Comment != nil {
			argv = append(argv, "-c", *s.Comment)
		}
		argv = append(argv, "--", s.Name)
		if err := runLocked(ctx, env, argv...); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		if len(s.AuthorizedKeys) > 0 {
			if err := applyKeys(env, s); err != nil {
				return fmt.Errorf("apply %s: %w", r.ID, err)
			}
		}
		return nil
	}
	return p
}

// PlanDelete plans to remove a user that left the catalog.
func (u *User) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *UserSpec) (*reconciler.Plan, error) {
	return planDelete(env, r, s.Name, func(d *db, name string) (map[string]string, bool) {
		cur, ok := d.users[name]
		if !ok {
			return nil, false
		}
		return observedUser(d, cur, nil), true
	}, "userdel")
}

func observedUser(d *db, cur passwdEntry, keys *keyState) map[string]string {
	m := map[string]string{
		"ensure": ensurePresent,
		"uid":    strconv.Itoa(cur.uid),
		"group":  d.groupName(cur.gid),
		"groups": strings.Join(d.memberOf(cur.name), ","),
		"home":   cur.home,
		"shell":  cur.shell,
	}
	if keys != nil {
		m["authorizedKeys"] = keys.summary()
	}
	return m
}

var _ reconciler.Previewer = (*User)(nil)

// Preview classes a catalog change without observing: deleting a user is
// destructive, changing its uid disruptive, anything else safe.
func (u *User) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	return preview(old, new, func(r *reconciler.Resource) (*UserSpec, error) { return reconciler.DecodeAs(u, r) }, "user", "uid")
}
