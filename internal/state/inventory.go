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
func writeInventory(statePath string, c *InventoryCopy, inv map[reconciler.ID]memoEntry[reconciler.Resource]) error {
	c.Format = inventoryFormat
	b, err := c.encode(inv)
	if err != nil {
		return fmt.Errorf("encode inventory copy: %w", err)
	}
	p := InventoryPath(statePath)
	if err := writeAtomic(p, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write inventory copy: %w", err)
	}
	return nil
}

// encode returns json.Marshal(c), the same bytes, made from the
// inventory's encodings in inv when it holds every one of them (the
// memo a record leaves): the inventory is then not encoded a second
// time. TestInventoryCopyEncode holds the two equal.
func (c *InventoryCopy) encode(inv map[reconciler.ID]memoEntry[reconciler.Resource]) ([]byte, error) {
	if len(c.Inventory) == 0 || len(inv) != len(c.Inventory) {
		return json.Marshal(c)
	}
	ids := make([]string, 0, len(c.Inventory))
	size := 0
	for id := range c.Inventory {
		e, ok := inv[id]
		if !ok {
			return json.Marshal(c)
		}
		ids = append(ids, string(id))
		size += len(id) + len(e.enc) + 4
	}
	slices.Sort(ids)
	// The fields before the inventory and those after it, in the order
	// InventoryCopy declares them.
	head, err := json.Marshal(struct {
		Format          int    `json:"format"`
		Site            string `json:"site,omitempty"`
		Node            string `json:"node,omitempty"`
		DesiredRevision string `json:"desiredRevision,omitempty"`
		AppliedRevision string `json:"appliedRevision,omitempty"`
	}{c.Format, c.Site, c.Node, c.DesiredRevision, c.AppliedRevision})
	if err != nil {
		return nil, err
	}
	tail, err := json.Marshal(struct {
		Refresh map[reconciler.ID][]reconciler.ID `json:"refresh,omitempty"`
		Applied []reconciler.AppliedCatalog       `json:"applied,omitempty"`
		Written time.Time                         `json:"written"`
	}{c.Refresh, c.Applied, c.Written})
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(head)+len(tail)+size+16)
	b = append(b, head[:len(head)-1]...)
	b = append(b, `,"inventory":{`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, id)
		b = append(b, ':')
		b = append(b, inv[reconciler.ID(id)].enc...)
	}
	b = append(b, '}', ',')
	return append(b, tail[1:]...), nil
}

// appendKey appends s as encoding/json writes a map key: as is between
// quotes when it holds nothing to escape, through json.Marshal otherwise.
func appendKey(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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
