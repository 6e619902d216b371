package agent

import (
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/fsgit/fsgit/internal/gitsource"
)

// reload re-reads the configuration file. A file that does not validate
// changes nothing. Fields bound at start (node, state file, cache, socket,
// root, metrics address, watch on/off) keep their running values until a
// restart; the rest applies at once, and the source is polled again, its
// tip verified and loaded anew (trusted keys or the secret provider may
// have changed).
func (a *Agent) reload() {
	if a.opts.ConfigFile == "" {
		a.log.Warn("reload: the agent was started without a configuration file")
		return
	}
	a.notify(daemon.SdNotifyReloading)
	defer a.notify(daemon.SdNotifyReady)
	old := a.config()
	cfg, err := LoadConfig(a.opts.SchemaFS, a.opts.ConfigFile)
	if err != nil {
		a.log.Error("reload: keeping the running configuration", "err", err)
		return
	}
	keep := func(field string, changed bool) {
		if changed {
			a.log.Warn("reload: this field changes on restart only", "field", field)
		}
	}
	keep("node", cfg.Node != old.Node)
	keep("stateFile", cfg.StateFile != old.StateFile)
	keep("cacheDir", cfg.CacheDir != old.CacheDir)
	keep("socket", cfg.Socket != old.Socket)
	keep("root", cfg.Root != old.Root)
	keep("metrics.listen", cfg.Metrics.Listen != old.Metrics.Listen)
	keep("tracing.endpoint", cfg.Tracing.Endpoint != old.Tracing.Endpoint)
	keep("watch.enabled", cfg.Watch.Enabled != old.Watch.Enabled)
	cfg.Node, cfg.StateFile, cfg.CacheDir, cfg.Socket, cfg.Root = old.Node, old.StateFile, old.CacheDir, old.Socket, old.Root
	cfg.Metrics.Listen, cfg.Watch.Enabled = old.Metrics.Listen, old.Watch.Enabled
	cfg.Tracing.Endpoint = old.Tracing.Endpoint

	src, err := openSource(cfg, a.log)
	if err != nil {
		a.log.Error("reload: keeping the running configuration", "err", err)
		return
	}
	if err := a.pub.configure(cfg); err != nil {
		a.log.Error("reload: keeping the running configuration", "err", err)
		return
	}
	a.mu.Lock()
	a.cfg, a.src, a.resetPoll = cfg, src, true
	a.mu.Unlock()
	a.limiter = newCorrections(cfg.Drift.MaxCorrections, cfg.Drift.Window.D())
	if a.watch != nil {
		a.watch.setLimits(cfg.Watch.MaxWatches, cfg.Watch.Debounce.D())
		a.syncWatch()
	}
	a.applyLogLevel(cfg)
	a.repeats.setRemind(cfg.Log.Remind.D())
	select {
	case a.pollPoke <- struct{}{}:
	default:
	}
	a.log.Info("configuration reloaded", "url", gitsource.RedactURL(cfg.Source.URL), "branch", cfg.Source.Branch,
		"interval", cfg.Source.PollInterval.D())
}
