//go:build !linux

package rootfs

import (
	"errors"
	"io"
	"os"
)

// directOpen is false where there is no openat: reads go through os.Root.
const directOpen = false

func openNoFollow(*os.File, string, int) (*os.File, error) { return nil, errors.ErrUnsupported }

// OpenAt opens a name in a directory with openat(2): not available here.
func OpenAt(*os.File, string, int, uint32) (*os.File, error) { return nil, errors.ErrUnsupported }

// OpenAtFD opens a name in a directory with openat(2): not available here.
func OpenAtFD(*os.File, string, int, uint32) (int, error) { return -1, errors.ErrUnsupported }

func readNoFollow(*os.File, string, int64, []byte, io.Writer) error { return errors.ErrUnsupported }
