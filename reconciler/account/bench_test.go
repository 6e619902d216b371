package account

import (
	"context"
	"testing"
)

// BenchmarkUser_Plan_run measures one run's observation of a user: parsing
// /etc/passwd and /etc/group once, and reading its authorized_keys.
func BenchmarkUser_Plan_run(b *testing.B) {
	d, err := hostFiles.read()
	if err != nil {
		b.Skip(err)
	}
	root := d.users["root"]
	r := resource(b, UserKindName, "root", map[string]any{
		"group": d.groupName(root.gid), "groups": d.memberOf("root"), "home": root.home, "shell": root.shell,
	})
	k := NewUser()
	for b.Loop() {
		if _, err := k.Plan(context.Background(), newEnv(), r); err != nil {
			b.Fatal(err)
		}
	}
}
