package docker

import (
	"fmt"
	"strings"
	"testing"
)

// TestContainer_SecretEnvMovedToPlainEnv moves a key from secretEnv to env:
// the plan must not show the value the container holds, which came from a
// secret, as the change's "before".
func TestContainer_SecretEnvMovedToPlainEnv(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	secrets := &mapSecrets{m: map[string]string{"t2v/token": "s3cr3t-value-1"}}
	var logs logBuffer
	withSecret := st.with(t, "secretEnv", map[string]any{"API_TOKEN": map[string]string{"secret": "t2v/token"}})
	env := newEnv(secrets, &logs)
	apply(t, k.network, env, st.net)
	apply(t, k.volume, env, st.vol)
	apply(t, k.container, env, withSecret)

	plain := st.with(t, "env", map[string]any{"API_TOKEN": "plain-value"})
	p := planOnly(t, k.container, plain, secrets)
	if !p.HasChanges() {
		t.Fatal("moving API_TOKEN to env planned no change")
	}
	if got := fmt.Sprintf("%+v", p.Changes) + fmt.Sprint(p.Observed); strings.Contains(got, "s3cr3t") {
		t.Errorf("secret value in the plan: %s", got)
	}
}
