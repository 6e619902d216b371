package file

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/reconciler"
)

// accounts resolves user and group names to IDs and back, for one run.
// Under a root that holds etc/passwd (etc/group), names come from that file;
// otherwise from the host's user database through os/user, memoized.
type accounts struct {
	users  *idTable // nil: the host's
	groups *idTable // nil: the host's

	mu         sync.Mutex
	hostUID    map[string]int
	hostGID    map[string]int
	hostUser   map[int]string
	hostGroup  map[int]string
	hostMisses map[string]error
}

// idTable is the name/ID mapping of a passwd or group file.
type idTable struct {
	file   string
	byName map[string]int
	byID   map[int]string
}

// accountsFor returns the run's accounts, loading the root's passwd and
// group files once per run.
func accountsFor(env *reconciler.Env) (*accounts, error) {
	load := func() (any, error) { return loadAccounts(env.Root) }
	if env.Cache == nil {
		a, err := load()
		if err != nil {
			return nil, err
		}
		return a.(*accounts), nil
	}
	v, err := env.Cache.Stable("file.accounts\x00"+env.Root, load)
	if err != nil {
		return nil, err
	}
	return v.(*accounts), nil
}

func loadAccounts(root string) (*accounts, error) {
	a := &accounts{
		hostUID: map[string]int{}, hostGID: map[string]int{},
		hostUser: map[int]string{}, hostGroup: map[int]string{},
		hostMisses: map[string]error{},
	}
	if root == "" {
		return a, nil
	}
	var err error
	if a.users, err = parseIDFile(filepath.Join(root, "etc/passwd")); err != nil {
		return nil, err
	}
	if a.groups, err = parseIDFile(filepath.Join(root, "etc/group")); err != nil {
		return nil, err
	}
	return a, nil
}

// parseIDFile reads a passwd or group file (name:x:id:...). A file that
// does not exist returns nil, nil: the host's database is used instead.
func parseIDFile(path string) (*idTable, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	defer f.Close()
	t := &idTable{file: path, byName: map[string]int{}, byID: map[int]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.SplitN(line, ":", 4)
		if len(fields) < 3 {
			continue
		}
		id, err := strconv.Atoi(fields[2])
		if err != nil {
			continue
		}
		if _, dup := t.byName[fields[0]]; !dup {
			t.byName[fields[0]] = id
		}
		if _, dup := t.byID[id]; !dup {
			t.byID[id] = fields[0]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read accounts %s: %w", path, err)
	}
	return t, nil
}

// uid resolves a user name (or a numeric ID) to a user ID.
func (a *accounts) uid(name string) (int, error) {
	return a.resolve(name, "user", a.users, a.hostUID, func(n string) (string, error) {
		u, err := user.Lookup(n)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
}

// gid resolves a group name (or a numeric ID) to a group ID.
func (a *accounts) gid(name string) (int, error) {
	return a.resolve(name, "group", a.groups, a.hostGID, func(n string) (string, error) {
		g, err := user.LookupGroup(n)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
}

func (a *accounts) resolve(name, what string, t *idTable, memo map[string]int, lookup func(string) (string, error)) (int, error) {
	// Only a name that starts as a number can be one (strconv.Atoi takes a
	// sign, then digits): a quiet run resolves every file's owner and
	// group, and a failed Atoi allocates its error.
	if name != "" && (name[0] >= '0' && name[0] <= '9' || name[0] == '+' || name[0] == '-') {
		if id, err := strconv.Atoi(name); err == nil && id >= 0 {
			return id, nil
		}
	}
	if t != nil {
		id, ok := t.byName[name]
		if !ok {
			return 0, fmt.Errorf("resolve %s %q: not in %s", what, name, t.file)
		}
		return id, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := memo[name]; ok {
		return id, nil
	}
	if err, ok := a.hostMisses[what+":"+name]; ok {
		return 0, err
	}
	s, err := lookup(name)
	if err == nil {
		var id int
		if id, err = strconv.Atoi(s); err == nil {
			memo[name] = id
			return id, nil
		}
	}
	err = fmt.Errorf("resolve %s %q: %w", what, name, err)
	a.hostMisses[what+":"+name] = err
	return 0, err
}

// userName returns the name of a user ID, or the number when it has none.
func (a *accounts) userName(uid int) string {
	return a.name(uid, a.users, a.hostUser, func(s string) (string, error) {
		u, err := user.LookupId(s)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

// groupName returns the name of a group ID, or the number when it has none.
func (a *accounts) groupName(gid int) string {
	return a.name(gid, a.groups, a.hostGroup, func(s string) (string, error) {
		g, err := user.LookupGroupId(s)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (a *accounts) name(id int, t *idTable, memo map[int]string, lookup func(string) (string, error)) string {
	if t != nil {
		if n, ok := t.byID[id]; ok {
			return n
		}
		return strconv.Itoa(id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n, ok := memo[id]; ok {
		return n
	}
	n, err := lookup(strconv.Itoa(id))
	if err != nil {
		n = strconv.Itoa(id)
	}
	memo[id] = n
	return n
}
