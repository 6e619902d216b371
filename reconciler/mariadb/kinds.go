package mariadb

import (
	"context"
	"fmt"

	"github.com/fsgit/fsgit/reconciler"
)

// Kinds holds the MariaDB kinds and the connection pools they share.
type Kinds struct {
	pools pools
}

// New returns the MariaDB kinds, with no connection open yet.
func New() *Kinds { return &Kinds{} }

// All returns the kinds to register: mariadb.database, mariadb.user,
// mariadb.grant, mariadb.migration and mariadb.security.
func (k *Kinds) All() []reconciler.Kind {
	return []reconciler.Kind{
		reconciler.NewTyped(&DatabaseKind{k}), reconciler.NewTyped(&UserKind{k}), reconciler.NewTyped(&GrantKind{k}),
		reconciler.NewTyped(&MigrationKind{k}), reconciler.NewTyped(&SecurityKind{k}),
	}
}

// Close closes every connection pool. Each kind's Close does too, so
// that [reconciler.Registry.Close] closes them; closing again does
// nothing.
func (k *Kinds) Close() error { return k.pools.closeAll() }

// exec runs one statement on the server, wrapping its error with the
// statement's verb and the resource. Statements carry no secret value.
func (c *conn) exec(ctx context.Context, id reconciler.ID, stmt string, args ...any) error {
	if _, err := c.db.ExecContext(ctx, stmt, args...); err != nil {
		return c.wrap(fmt.Sprintf("%s: %s", id, verb(stmt)), err)
	}
	return nil
}

// verb returns the first two words of a statement, for error messages.
func verb(stmt string) string {
	n, words := 0, 0
	for i, r := range stmt {
		if r == ' ' {
			words++
			if words == 2 {
				return stmt[:i]
			}
		}
		n = i
	}
	return stmt[:n+1]
}

// dropPlan plans stmt (DROP DATABASE, DROP USER) for the object what
// ("database", "user") when it exists: destructive, and refused at apply
// time unless the resource allows destroy. forget drops what the apply
// makes stale in the run's observation.
func dropPlan(c *conn, forget func(), r *reconciler.Resource, what, stmt string, exists bool, p *reconciler.Plan) *reconciler.Plan {
	if !exists {
		return p
	}
	p.Action = reconciler.ActionDelete
	p.Changes = append(p.Changes, reconciler.Change{Field: "ensure", Before: "present", After: "absent", Class: reconciler.Destructive})
	p.Apply = func(ctx context.Context) error {
		if !r.AllowDestroy {
			return fmt.Errorf("%s: drop %s: destroy not allowed on this resource", r.ID, what)
		}
		defer forget()
		return c.exec(ctx, r.ID, stmt)
	}
	return p
}
