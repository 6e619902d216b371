// Package account implements the "user" and "group" resource kinds: local
// accounts managed through the shadow utilities (useradd, usermod, userdel,
// groupadd, groupmod, groupdel), and a user's SSH authorized_keys.
//
// Observation parses /etc/passwd and /etc/group once per run (shared by
// every user and group resource through the run's cache, and read again
// after an apply changed them). Account commands run one at a time: the
// shadow utilities lock the account files and fail rather than wait.
//
// Accounts cannot be managed under a --root: there both kinds skip, never
// fake. Removing an account (ensure absent, or pruning one that left the
// catalog) is destructive: it runs only where the resource allows destroy.
package account

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/reconciler"
)

const (
	ensurePresent = "present"
	ensureAbsent  = "absent"
)

// Cache keys of the run's account snapshot and of the run's command lock.
const (
	cacheDB   = "account/db"
	cacheLock = "account/lock"
)

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name    string
	uid     int
	gid     int
	comment string
	home    string
	shell   string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     int
	members []string
}

// db is one snapshot of the account files.
type db struct {
	users      map[string]passwdEntry
	groups     map[string]groupEntry
	groupByGID map[int]string
}

// groupName returns the name of a gid, or the number when no group has it.
func (d *db) groupName(gid int) string {
	if n, ok := d.groupByGID[gid]; ok {
		return n
	}
	return strconv.Itoa(gid)
}

// memberOf returns the sorted names of the groups that list user as a
// member: its supplementary groups.
func (d *db) memberOf(user string) []string {
	var out []string
	for _, g := range d.groups {
		if slices.Contains(g.members, user) {
			out = append(out, g.name)
		}
	}
	slices.Sort(out)
	return out
}

// files says where the account files are; tests of parsing use others.
type files struct {
	passwd, group string
}

var hostFiles = files{passwd: "/etc/passwd", group: "/etc/group"}

// read parses both account files.
func (f files) read() (*db, error) {
	d := &db{users: map[string]passwdEntry{}, groups: map[string]groupEntry{}, groupByGID: map[int]string{}}
	if err := scan(f.passwd, 7, func(fl []string) error {
		uid, err1 := strconv.Atoi(fl[2])
		gid, err2 := strconv.Atoi(fl[3])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("bad uid or gid for %s", fl[0])
		}
		d.users[fl[0]] = passwdEntry{name: fl[0], uid: uid, gid: gid, comment: fl[4], home: fl[5], shell: fl[6]}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := scan(f.group, 4, func(fl []string) error {
		gid, err := strconv.Atoi(fl[2])
		if err != nil {
			return fmt.Errorf("bad gid for %s", fl[0])
		}
		var members []string
		if fl[3] != "" {
			members = strings.Split(fl[3], ",")
		}
		d.groups[fl[0]] = groupEntry{name: fl[0], gid: gid, members: members}
		if _, dup := d.groupByGID[gid]; !dup {
			d.groupByGID[gid] = fl[0]
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return d, nil
}

// scan calls f with the fields of each line of a colon-separated file,
// skipping blank lines, comments and NIS "+"/"-" entries.
func scan(path string, n int, f func([]string) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || text[0] == '#' || text[0] == '+' || text[0] == '-' {
			continue
		}
		fl := strings.Split(text, ":")
		if len(fl) != n {
			return fmt.Errorf("parse %s:%d: want %d fields, got %d", path, line, n, len(fl))
		}
		if err := f(fl); err != nil {
			return fmt.Errorf("parse %s:%d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// observe returns the run's snapshot of the account files, or the skip
// under --root.
func observe(env *reconciler.Env) (*db, error) {
	if env.Root != "" {
		return nil, skipUnderRoot(env)
	}
	v, err := env.Cache.Once(cacheDB, func() (any, error) { return hostFiles.read() })
	if err != nil {
		return nil, fmt.Errorf("observe accounts: %w", err)
	}
	return v.(*db), nil
}

// runLocked runs one account command under the run's account lock and
// drops the run's snapshot, which it has made stale.
func runLocked(ctx context.Context, env *reconciler.Env, argv ...string) error {
	v, _ := env.Cache.Once(cacheLock, func() (any, error) { return &sync.Mutex{}, nil })
	mu := v.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	defer env.Cache.Forget(cacheDB)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("run %s: %w: %s", strings.Join(argv, " "), err, clip(out, 2048))
	}
	return nil
}

func clip(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// skipUnderRoot is the skip reason for both kinds under --root.
func skipUnderRoot(env *reconciler.Env) error {
	return reconciler.Skip(fmt.Sprintf("accounts cannot be managed under --root %s: the shadow utilities act on the host", env.Root))
}

// accountSpec is what the user and group specs share for the helpers
// below: whether the account is to be absent, and the id it pins (nil:
// none).
type accountSpec interface {
	account() (absent bool, id *int)
}

func (s *UserSpec) account() (bool, *int)  { return s.Ensure.Absent(), s.UID }
func (s *GroupSpec) account() (bool, *int) { return s.Ensure.Absent(), s.GID }

// planDelete plans to remove the user or group name, which left the
// catalog; find looks the account up in the run's snapshot and summarizes
// it; del is userdel or groupdel.
func planDelete(env *reconciler.Env, r *reconciler.Resource, name string, find func(d *db, name string) (map[string]string, bool), del string) (*reconciler.Plan, error) {
	d, err := observe(env)
	if err != nil {
		return nil, err
	}
	observed, exists := find(d, name)
	if !exists {
		return &reconciler.Plan{Observed: map[string]string{"ensure": ensureAbsent}}, nil
	}
	return deletePlan(env, r, &reconciler.Plan{Observed: observed}, del, name), nil
}

// deletePlan plans del (userdel or groupdel) of the account name. A
// user's home directory stays: removing the account is destructive enough.
func deletePlan(env *reconciler.Env, r *reconciler.Resource, p *reconciler.Plan, del, name string) *reconciler.Plan {
	p.Action = reconciler.ActionDelete
	p.Changes = []reconciler.Change{{Field: "ensure", Before: ensurePresent, After: ensureAbsent, Class: reconciler.Destructive}}
	p.Apply = func(ctx context.Context) error {
		if err := runLocked(ctx, env, del, "--", name); err != nil {
			return fmt.Errorf("delete %s: %w", r.ID, err)
		}
		return nil
	}
	return p
}

// preview classes a catalog change to a user or a group (noun) without
// observing: deleting it is destructive, changing the id it pins (idField)
// disruptive, anything else safe.
func preview[S accountSpec](old, new *reconciler.Resource, decode func(*reconciler.Resource) (S, error), noun, idField string) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Destructive, "delete " + noun
	}
	s, err := decode(new)
	if err != nil {
		return reconciler.Safe, ""
	}
	absent, id := s.account()
	oldPresent, oldAbsent, oldID := false, false, (*int)(nil)
	if old != nil {
		if o, err := decode(old); err == nil {
			oldAbsent, oldID = o.account()
			oldPresent = !oldAbsent
		}
	}
	if absent {
		if oldAbsent {
			return reconciler.Safe, ""
		}
		return reconciler.Destructive, "delete " + noun
	}
	if oldPresent && oldID != nil && id != nil && *oldID != *id {
		return reconciler.Disruptive, "change " + idField
	}
	return reconciler.Safe, ""
}
