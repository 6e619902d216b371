package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/gitsource"
)

// DefaultConfigFile is where fsgit agent reads its configuration.
const DefaultConfigFile = "/etc/fsgit/agent.cue"

// Config is the agent's node-local configuration, decoded from a CUE file
// validated by the schema's #AgentConfig (schema/agent.cue, which holds the
// defaults and documents every field).
type Config struct {
	Node       string         `json:"node"`
	Source     SourceConfig   `json:"source"`
	Status     StatusConfig   `json:"status"`
	Secrets    SecretsConfig  `json:"secrets"`
	Root       string         `json:"root,omitempty"`
	StateFile  string         `json:"stateFile"`
	CacheDir   string         `json:"cacheDir"`
	Socket     string         `json:"socket"`
	Metrics    MetricsConfig  `json:"metrics"`
	Tracing    TracingConfig  `json:"tracing"`
	Watch      WatchConfig    `json:"watch"`
	Drift      DriftConfig    `json:"drift"`
	RunTimeout Duration       `json:"runTimeout"`
	Limits     LimitsConfig   `json:"limits"`
	Log        LogConfig      `json:"log"`
	Webhook    *WebhookConfig `json:"webhook,omitempty"`
	Notify     NotifyConfig   `json:"notify"`
}

// WebhookConfig is the push-event listener.
type WebhookConfig struct {
	Listen      string   `json:"listen"`
	SecretFile  string   `json:"secretFile"`
	MinInterval Duration `json:"minInterval"`
}

// NotifyConfig says where events are posted.
type NotifyConfig struct {
	Endpoints   []NotifyEndpoint `json:"endpoints"`
	MaxAttempts int              `json:"maxAttempts"`
	MinInterval Duration         `json:"minInterval"`
}

// NotifyEndpoint is one receiver of events.
type NotifyEndpoint struct {
	URL     string `json:"url,omitempty"`
	URLFile string `json:"urlFile,omitempty"`
	Format  string `json:"format"`
}

// LimitsConfig bounds what evaluating a commit's site may cost (-1: no
// limit).
type LimitsConfig struct {
	MaxFileBytes int64    `json:"maxFileBytes"`
	MaxSiteBytes int64    `json:"maxSiteBytes"`
	MaxDepth     int      `json:"maxDepth"`
	MaxTerms     int      `json:"maxTerms"`
	EvalTimeout  Duration `json:"evalTimeout"`
}

// SourceConfig says where the site comes from.
type SourceConfig struct {
	URL           string       `json:"url"`
	Branch        string       `json:"branch"`
	Site          string       `json:"site"`
	Credentials   *Credentials `json:"credentials,omitempty"`
	PollInterval  Duration     `json:"pollInterval"`
	Jitter        Duration     `json:"jitter"`
	MaxBackoff    Duration     `json:"maxBackoff"`
	TrustedKeys   []string     `json:"trustedKeys"`
	CacheMaxBytes int64        `json:"cacheMaxBytes"`
	// MaxTipAge, when set, is the age of the tip's commit past which the
	// source is reported frozen (see status.Source.CheckTip).
	MaxTipAge Duration `json:"maxTipAge,omitempty"`
}

// StatusConfig says where the node publishes its status.
type StatusConfig struct {
	Enabled     bool         `json:"enabled"`
	URL         string       `json:"url,omitempty"`
	Branch      string       `json:"branch"`
	Layout      string       `json:"layout"`
	Credentials *Credentials `json:"credentials,omitempty"`
}

// Credentials name the files that authenticate to a repository.
type Credentials struct {
	Username       string `json:"username,omitempty"`
	PasswordFile   string `json:"passwordFile,omitempty"`
	SSHKeyFile     string `json:"sshKeyFile,omitempty"`
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
}

// SecretsConfig says where secret values come from.
type SecretsConfig struct {
	Provider     string `json:"provider"`
	Dir          string `json:"dir"`
	IdentityFile string `json:"identityFile,omitempty"`
}

// MetricsConfig adds a TCP listener for /metrics.
type MetricsConfig struct {
	Listen string `json:"listen,omitempty"`
}

// TracingConfig exports every run as an OpenTelemetry trace over OTLP/HTTP
// when Endpoint is set.
type TracingConfig struct {
	Endpoint string `json:"endpoint,omitempty"`
}

// WatchConfig tunes the watch on managed files.
type WatchConfig struct {
	Enabled    bool     `json:"enabled"`
	MaxWatches int      `json:"maxWatches"`
	Debounce   Duration `json:"debounce"`
	// FullCheck is how often a poll without a new commit observes every
	// resource; the others observe only what the watch does not cover.
	FullCheck Duration `json:"fullCheck"`
}

// DriftConfig limits drift corrections per resource.
type DriftConfig struct {
	MaxCorrections int      `json:"maxCorrections"`
	Window         Duration `json:"window"`
}

// LogConfig chooses the log level and format, and how often a condition
// that stays (a held destroy, a failure) is logged again.
type LogConfig struct {
	Level  string   `json:"level"`
	Format string   `json:"format"`
	Remind Duration `json:"remind"`
}

// Duration is a time.Duration written as "30s" in the configuration.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("parse duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// gitCredentials converts to gitsource's credentials.
func (c *Credentials) gitCredentials() gitsource.Credentials {
	if c == nil {
		return gitsource.Credentials{}
	}
	return gitsource.Credentials{Username: c.Username, PasswordFile: c.PasswordFile, SSHKeyFile: c.SSHKeyFile, KnownHostsFile: c.KnownHostsFile}
}

// StatusURL is where the status branch lives: status.url, or the source.
func (c *Config) StatusURL() string {
	if c.Status.URL != "" {
		return c.Status.URL
	}
	return c.Source.URL
}

// StatusCredentials are status.credentials, or the source's when the
// status branch lives in the source repository.
func (c *Config) StatusCredentials() *Credentials {
	if c.Status.Credentials != nil || c.Status.URL != "" {
		return c.Status.Credentials
	}
	return c.Source.Credentials
}

// LoadConfig reads and validates the configuration file at name against
// #AgentConfig from schemaFS (the schema package's files).
func LoadConfig(schemaFS fs.FS, name string) (*Config, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read agent configuration: %w", err)
	}
	return ParseConfig(schemaFS, name, src)
}

// ParseConfig validates src (CUE or JSON, named name in messages) against
// #AgentConfig and decodes it with the schema's defaults filled in. A
// problem is reported once per field, with its position in src and what
// the field's type expects.
func ParseConfig(schemaFS fs.FS, name string, src []byte) (*Config, error) {
	var c Config
	err := desired.DecodeConfig(schemaFS, "#AgentConfig", name, src, &c)
	if ce := (*desired.ConfigError)(nil); errors.As(err, &ce) {
		return nil, fmt.Errorf("agent configuration %s:\n%w", name, err)
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}
