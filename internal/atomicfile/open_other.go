//go:build !linux

package atomicfile

import (
	"errors"
	"os"
)

// openTempAt is not available here: temporary files are created through
// the directory's os.Root.
func openTempAt(*os.File, string, int) (*os.File, error) { return nil, errors.ErrUnsupported }
