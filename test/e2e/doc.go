// Package e2e is fsgit's end-to-end test: the example site converging a
// fleet of three systemd nodes (Docker containers that boot Debian with
// systemd as PID 1, made by scripts/fleet.sh) from a signed git push, with
// its assertions made on what systemd, MariaDB and Docker say. It runs
// with `make e2e` (FSGIT_E2E=1); `go test ./...` skips it.
package e2e
