package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// InventorySuffix names the inventory copy beside the state file:
// state.db.inventory.json.
const InventorySuffix = ".inventory.json"

// inventoryFormat is the layout of the inventory copy.
const inventoryFormat = 1

// InventoryCopy is the second, small file kept beside the state file: what
// pruning and the owed restarts need, and the revisions. It is rewritten
// atomically whenever a recorded run changes it, so that a corrupt state
// file, moved aside, costs the node only what observation rebuilds (the
// observed states and the run history), never the knowledge of what it
// manages.
type InventoryCopy struct {
	Format int    `json:"format"`
	Site   string `json:"site,omitempty"`
	Node   string `json:"node,omitempty"`
	// DesiredRevision and AppliedRevision are the meta bucket's.
	DesiredRevision string `json:"desiredRevision,omitempty"`
	AppliedRevision string `json:"appliedRevision,omitempty"`
	// Inventory and Refresh are the memory's (see reconciler.Memory).
	Inventory map[reconciler.ID]reconciler.Resource `json:"inventory,omitempty"`
	Refresh   map[reconciler.ID][]reconciler.ID     `json:"refresh,omitempty"`
	// Applied is the memory's last applied catalogs, which pruning keeps
	// what a rollback needs by.
	Applied []reconciler.AppliedCatalog `json:"applied,omitempty"`
	// Written is when the copy was written.
	Written time.Time `json:"written"`
}

// InventoryPath returns the inventory copy's path for a state file.
func InventoryPath(statePath string) string { return statePath + InventorySuffix }

// ReadInventory reads the inventory copy of the state file at statePath.
// A missing copy is an error wrapping fs.ErrNotExist.
func ReadInventory(statePath string) (*InventoryCopy, error) {
	p := InventoryPath(statePath)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read inventory copy: %w", err)
	}
	var c InventoryCopy
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read inventory copy %s: %w", p, err)
	}
	if c.Format != inventoryFormat {
		return nil, fmt.Errorf("read inventory copy %s: format %d, want %d", p, c.Format, inventoryFormat)
	}
	for id, r := range c.Inventory {
		if r.ID != id {
			return nil, fmt.Errorf("read inventory copy %s: entry %s holds resource %s", p, id, r.ID)
		}
	}
	return &c, nil
}

// Memory returns the memory the copy keeps: the inventory and the
// refreshes owed, no observed state.
func (c *InventoryCopy) Memory() *reconciler.Memory {
	m := reconciler.NewMemory()
	if c == nil {
		return m
	}
	for id, r := range c.Inventory {
		m.Inventory[id] = r
	}
	for id, by := range c.Refresh {
		m.Refresh[id] = by
	}
	m.Applied = slices.Clone(c.Applied)
	return m
}

// writeInventory replaces the inventory copy atomically: a temporary
// file beside it, synced, renamed over it, the directory synced. A failed
// write leaves the old copy and no temporary file.
func writeInventory(statePath string, c *InventoryCopy) error {
	c.Format = inventoryFormat
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode inventory copy: %w", err)
	}
	p := InventoryPath(statePath)
	if err := writeAtomic(p, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write inventory copy: %w", err)
	}
	return nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over path, then syncs the directory.
func writeAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// isNotExist reports whether err wraps fs.ErrNotExist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
