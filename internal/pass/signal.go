package pass

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Interrupted catches SIGINT and SIGTERM until release: the first calls
// notice and closes stop (the resources in hand finish, no other starts),
// the second cancels the returned context.
func Interrupted(ctx context.Context, notice func(os.Signal)) (_ context.Context, stop <-chan struct{}, release func()) {
	stopCh := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			notice(s)
			close(stopCh)
		case <-ctx.Done():
			return
		}
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, stopCh, func() { signal.Stop(sigs); cancel() }
}
