package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/reconciler"
)

// overrunFile, next to the agent's state file, remembers the last commit
// whose evaluation overran its time budget, so that the agent started
// again after an overrun refuses it at once instead of overrunning again.
const overrunFile = "eval-overrun.json"

// siteLoader builds the agent's catalogs from a commit's tree with the CUE
// loader, under the configured limits: the agent's CatalogLoader unless
// Options.Load is set.
//
// An evaluation that overruns its budget cannot be stopped from inside
// the process: CUE's evaluator takes no context. desired abandons it (the
// commit is refused at once, with the sentence in the node's status); if
// it is still running after as long again, it is holding a CPU and memory
// for nothing, and the only way to stop it is to end the process: restart
// asks the agent to finish the resources in hand and exit 1, for the
// service manager to start it again (fsgit.service has
// Restart=on-failure). The commit is remembered next to the state file so
// that the new process refuses it without evaluating it (unless the budget
// was raised). The cheap checks
// before evaluation (file and site sizes, nesting depth) make the known
// slow inputs fail in milliseconds, so this is the backstop, not the rule.
type siteLoader struct {
	config  func() *Config
	log     *slog.Logger
	restart func(error)
	// grace is how long an abandoned evaluation may run on before the
	// restart; zero: the budget again.
	grace time.Duration
}

// overrun is what overrunFile holds.
type overrun struct {
	Revision    string  `json:"revision"`
	EvalTimeout float64 `json:"evalTimeoutSeconds"`
	Error       string  `json:"error"`
}

// limits converts the agent's configuration.
func limits(c LimitsConfig) desired.Limits {
	return desired.Limits{MaxFileBytes: c.MaxFileBytes, MaxSiteBytes: c.MaxSiteBytes, MaxDepth: c.MaxDepth, MaxTerms: c.MaxTerms, EvalTimeout: c.EvalTimeout.D()}
}

// load implements CatalogLoader.
func (l *siteLoader) load(ctx context.Context, fsys fs.FS, siteDir, revision, node string) (*reconciler.Catalog, error) {
	cfg := l.config()
	lim := limits(cfg.Limits)
	if o := l.overrunBefore(cfg, revision); o != nil {
		return nil, fmt.Errorf("%s (refused without evaluating it again: it overran the same budget before)", o.Error)
	}
	site, err := desired.Load(ctx, desired.Source{FS: fsys, SiteDir: siteDir, Revision: revision, Limits: lim, Node: node})
	var cat *reconciler.Catalog
	if err == nil {
		cat, err = site.Catalog(node)
	}
	var be *desired.BudgetError
	if errors.As(err, &be) {
		l.remember(cfg, overrun{Revision: revision, EvalTimeout: be.Budget.Seconds(), Error: be.Error()})
		go l.watch(be, revision)
	}
	return cat, err
}

// watch restarts the agent when the abandoned evaluation is still running
// after the grace period.
func (l *siteLoader) watch(be *desired.BudgetError, revision string) {
	grace := l.grace
	if grace <= 0 {
		grace = be.Budget
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-be.Done():
		l.log.Info("the abandoned evaluation has ended", "commit", revision)
	case <-t.C:
		err := fmt.Errorf("the evaluation of commit %s overran its budget of %s and still runs %s later: restarting to stop it", revision, be.Budget, grace)
		l.log.Error("restarting: an abandoned CUE evaluation cannot be stopped otherwise", "commit", revision, "budget", be.Budget.Seconds(), "grace", grace.Seconds())
		l.restart(err)
	}
}

// overrunBefore returns the remembered overrun of revision when the
// budget now is no larger than the one it overran.
func (l *siteLoader) overrunBefore(cfg *Config, revision string) *overrun {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(cfg.StateFile), overrunFile))
	if err != nil {
		return nil
	}
	var o overrun
	if err := json.Unmarshal(b, &o); err != nil || o.Revision != revision {
		return nil
	}
	budget := cfg.Limits.EvalTimeout.D()
	if budget < 0 || budget.Seconds() > o.EvalTimeout {
		return nil
	}
	return &o
}

// remember writes the overrun down (best effort: without it, a restart
// evaluates the commit once more).
func (l *siteLoader) remember(cfg *Config, o overrun) {
	b, err := json.Marshal(o)
	if err == nil {
		dir := filepath.Dir(cfg.StateFile)
		tmp := filepath.Join(dir, overrunFile+".tmp")
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, filepath.Join(dir, overrunFile))
		}
	}
	if err != nil {
		l.log.Warn("cannot remember the commit that overran its budget", "commit", o.Revision, "err", err)
	}
}

// NodeSecrets is the node's SecretsFactory: the secrets directory, and
// with the age provider the site's encrypted files first.
func NodeSecrets(cfg SecretsConfig, siteSecrets fs.FS) (reconciler.SecretResolver, error) {
	if cfg.Provider != "age" {
		return pass.Secrets(pass.SecretSources{Dir: cfg.Dir})
	}
	if cfg.IdentityFile == "" {
		return nil, errors.New("the age secret provider needs secrets.identityFile")
	}
	return pass.Secrets(pass.SecretSources{Dir: cfg.Dir, IdentityFile: cfg.IdentityFile, Site: siteSecrets, Where: "secrets"})
}
