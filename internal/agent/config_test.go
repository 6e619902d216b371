package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/schema"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(schema.Files(), "/etc/fsgit/agent.cue", []byte(`
node: "online-1"
source: {
	url:  "https://git.example.com/site.git"
	site: "sites/example"
	credentials: {username: "bot", passwordFile: "/etc/fsgit/token"}
	trustedKeys: ["/etc/fsgit/keys/release.asc"]
}
status: url: "ssh://git@git.example.com/status.git"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Branch != "main" || cfg.Source.PollInterval.D() != 60*time.Second || cfg.Source.Jitter.D() != 20*time.Second ||
		cfg.Source.MaxBackoff.D() != 5*time.Minute || cfg.Status.Branch != "fsgit/status" || !cfg.Status.Enabled ||
		cfg.StateFile != "/var/lib/fsgit/state.db" || cfg.Socket != "/run/fsgit/fsgit.sock" || cfg.Secrets.Provider != "files" ||
		!cfg.Watch.Enabled || cfg.Watch.MaxWatches != 512 || cfg.Drift.MaxCorrections != 5 || cfg.Log.Level != "info" ||
		cfg.Log.Remind.D() != 15*time.Minute {
		t.Fatalf("defaults not filled: %+v", cfg)
	}
	if cfg.StatusURL() != "ssh://git@git.example.com/status.git" || cfg.StatusCredentials() != nil {
		t.Fatalf("status target: %s %+v", cfg.StatusURL(), cfg.StatusCredentials())
	}

	same, err := ParseConfig(schema.Files(), "a.cue", []byte(`node: "n", source: {url: "file:///srv/site.git", site: "sites/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if same.StatusURL() != "file:///srv/site.git" {
		t.Fatalf("status url defaults to the source: %s", same.StatusURL())
	}

	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown field", `node: "n", source: {url: "file:///r", site: "s"}, pollInterval: "1s"`, "agent.cue:1:51: pollInterval: field not allowed"},
		{"bad duration", `node: "n", source: {url: "file:///r", site: "s", pollInterval: "soon"}`, "agent.cue:1:64: source.pollInterval: invalid value \"soon\"" +
			" (out of bound =~\"^[0-9]+(ms|s|m|h)$\")\n\t#Duration is a duration with one unit"},
		{"relative path", `node: "n", source: {url: "file:///r", site: "s"}, stateFile: "state.db"`, "#AbsPath is an absolute, clean path"},
		// An optional field is explained as a required one is.
		{"bad optional duration", `node: "n", source: {url: "file:///r", site: "s", maxTipAge: "1d"}`, "source.maxTipAge: invalid value \"1d\"" +
			" (out of bound =~\"^[0-9]+(ms|s|m|h)$\")\n\t#Duration is a duration with one unit"},
		{"not a url", `node: "n", source: {url: "/srv/site", site: "s"}`, "source.url: invalid value \"/srv/site\""},
		{"missing site", `node: "n", source: url: "file:///r"`, "source.site: incomplete value"},
		{"syntax", `node: "n`, "agent.cue:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(schema.Files(), "/etc/fsgit/agent.cue", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "empty disjunction") {
				t.Errorf("noise in the error: %v", err)
			}
		})
	}
}

// TestParseConfig_LimitsDefaults: the schema's defaults for limits are
// desired's, and a value given is kept.
func TestParseConfig_LimitsDefaults(t *testing.T) {
	cfg, err := ParseConfig(schema.Files(), "a.cue", []byte(`node: "n", source: {url: "file:///srv/site.git", site: "sites/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := LimitsConfig{MaxFileBytes: desired.DefaultMaxFileBytes, MaxSiteBytes: desired.DefaultMaxSiteBytes, MaxDepth: desired.DefaultMaxDepth, MaxTerms: desired.DefaultMaxTerms, EvalTimeout: Duration(desired.DefaultEvalTimeout)}
	if cfg.Limits != want {
		t.Fatalf("limits = %+v, want %+v", cfg.Limits, want)
	}
	cfg, err = ParseConfig(schema.Files(), "a.cue", []byte(`node: "n", source: {url: "file:///srv/site.git", site: "sites/x"}, limits: {maxDepth: 200, evalTimeout: "5s", maxFileBytes: -1}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MaxDepth != 200 || cfg.Limits.EvalTimeout.D() != 5*time.Second || cfg.Limits.MaxFileBytes != -1 {
		t.Fatalf("limits = %+v", cfg.Limits)
	}
}

// TestParseConfig_StatusLayout: the branch layout is the default; the refs
// layout needs a status repository other than the polled one.
func TestParseConfig_StatusLayout(t *testing.T) {
	const src = `node: "n", source: {url: "https://git.example/site.git", site: "sites/x"}`
	cfg, err := ParseConfig(schema.Files(), "a.cue", []byte(src))
	if err != nil || cfg.Status.Layout != "branch" {
		t.Fatalf("default layout: %+v, %v", cfg, err)
	}
	cfg, err = ParseConfig(schema.Files(), "a.cue", []byte(src+`, status: {layout: "refs", url: "https://git.example/status.git"}`))
	if err != nil || cfg.Status.Layout != "refs" || cfg.StatusURL() != "https://git.example/status.git" {
		t.Fatalf("refs layout: %+v, %v", cfg, err)
	}
	for _, bad := range []string{
		`, status: layout: "refs"`,
		`, status: {layout: "refs", url: "https://git.example/site.git"}`,
		`, status: layout: "sharded"`,
	} {
		if _, err := ParseConfig(schema.Files(), "a.cue", []byte(src+bad)); err == nil || !strings.Contains(err.Error(), "status") {
			t.Errorf("%s: err = %v", bad, err)
		} else {
			t.Logf("%s: %v", bad, err)
		}
	}
}

// TestParseConfig_MaxTipAge: unset, freeze detection is off; set, it is
// decoded; a value that is not a duration is refused where it stands.
func TestParseConfig_MaxTipAge(t *testing.T) {
	const src = `node: "n", source: {url: "https://git.example/site.git", site: "sites/x"`
	cfg, err := ParseConfig(schema.Files(), "a.cue", []byte(src+`}`))
	if err != nil || cfg.Source.MaxTipAge != 0 {
		t.Fatalf("unset: %+v, %v", cfg, err)
	}
	cfg, err = ParseConfig(schema.Files(), "a.cue", []byte(src+`, maxTipAge: "24h"}`))
	if err != nil || cfg.Source.MaxTipAge.D() != 24*time.Hour {
		t.Fatalf("24h: %+v, %v", cfg, err)
	}
	_, err = ParseConfig(schema.Files(), "a.cue", []byte(src+`, maxTipAge: "1d"}`))
	if err == nil || !strings.Contains(err.Error(), "source.maxTipAge") || !strings.Contains(err.Error(), `(ms|s|m|h)`) {
		t.Fatalf("1d: err = %v", err)
	}
}
