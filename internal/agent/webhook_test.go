package agent

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWebhook_triggersPoll: an agent polling once an hour converges a
// push in moments when a signed push event arrives (GitHub's signature,
// GitLab's token, fsgit's generic signature); a bad signature or none is
// refused and triggers nothing; triggers beyond one per minInterval are
// coalesced.
func TestWebhook_triggersPoll(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	secret := "0123456789abcdef-webhook"
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	n := newNode(t, "n1", s.url, "1h", `watch: enabled: false
webhook: {listen: "`+addr+`", secretFile: "`+secretFile+`", minInterval: "300ms"}`)
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })

	body := []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}`)
	sign := func(key string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	post := func(header, value string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+WebhookPath, bytes.NewReader(body))
		if header != "" {
			req.Header.Set(header, value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	for i, v := range []string{"v2", "v3", "v4"} {
		s.push(v, map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", v+"\n"))})
		for _, bad := range [][2]string{{"", ""}, {"X-Hub-Signature-256", sign("wrong-secret-0123456")}, {"X-Gitlab-Token", "nope"}, {"X-Fsgit-Signature", "sha256=zz"}} {
			if code := post(bad[0], bad[1]); code != http.StatusUnauthorized {
				t.Fatalf("%s %q: status %d, want 401", bad[0], bad[1], code)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if got := n.read("/etc/app/app.conf"); got == v+"\n" {
			t.Fatalf("a refused webhook triggered a poll: %q on disk", got)
		}
		good := [][2]string{{"X-Hub-Signature-256", sign(secret)}, {"X-Gitlab-Token", secret}, {"X-Fsgit-Signature", sign(secret)}}[i]
		start := time.Now()
		if code := post(good[0], good[1]); code != http.StatusAccepted {
			t.Fatalf("%s: status %d, want 202", good[0], code)
		}
		waitFor(t, v+" on disk after the webhook", func() bool { return n.read("/etc/app/app.conf") == v+"\n" })
		t.Logf("%s: push to converged %s after the webhook", good[0], time.Since(start).Round(time.Millisecond))
	}
	// Right after a trigger: coalesced. Two at once, since on a slow
	// machine the last trigger may be more than minInterval ago: the
	// second of the two is limited whatever the first was.
	for range 2 {
		if code := post("X-Fsgit-Signature", sign(secret)); code != http.StatusAccepted {
			t.Fatalf("status %d", code)
		}
	}
	m, _ := NewClient(n.sock).Get(t.Context(), MetricsPath, nil)
	if want := `fsgit_webhook_requests_total{result="refused"} 12`; !strings.Contains(string(m), want) {
		t.Errorf("metrics lack %s", want)
	}
	if !regexp.MustCompile(`fsgit_webhook_requests_total\{result="limited"\} [12]\n`).Match(m) {
		t.Errorf("metrics lack fsgit_webhook_requests_total{result=\"limited\"} 1 or 2:\n%s", m)
	}
}
