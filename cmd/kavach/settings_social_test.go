package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Social providers come from the environment (built-ins) and a JSON file
// (anything else).
func TestSocialProviderSettings(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "AuthKey.p8")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "providers.json")
	if err := os.WriteFile(file, []byte(`[{"id":"acme","issuer":"https://id.acme.test","clientId":"c","clientSecret":"s","scopes":["openid","email"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KAVACH_OAUTH_GITHUB_CLIENT_ID":       "gh-id",
		"KAVACH_OAUTH_GITHUB_CLIENT_SECRET":   "gh-secret",
		"KAVACH_OAUTH_MICROSOFT_CLIENT_ID":    "ms-id",
		"KAVACH_OAUTH_MICROSOFT_TENANT":       "organizations",
		"KAVACH_OAUTH_APPLE_CLIENT_ID":        "com.example.web",
		"KAVACH_OAUTH_APPLE_PRIVATE_KEY_FILE": keyFile,
		"KAVACH_OAUTH_PROVIDERS_FILE":         file,
	}
	o, err := parseSettings(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--oauth-github-client-secret", "from-flag"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i, p := range o.cfg.SignIn.Providers {
		got[p.ID] = i
	}
	ps := o.cfg.SignIn.Providers
	if len(ps) != 4 {
		t.Fatalf("providers: %+v", ps)
	}
	if gh := ps[got["github"]]; gh.ClientID != "gh-id" || gh.ClientSecret != "from-flag" {
		t.Errorf("github: %+v", gh)
	}
	if ms := ps[got["microsoft"]]; ms.ClientID != "ms-id" || ms.Tenant != "organizations" {
		t.Errorf("microsoft: %+v", ms)
	}
	if ap := ps[got["apple"]]; ap.PrivateKey != "-----BEGIN PRIVATE KEY-----\n" {
		t.Errorf("apple key not read: %+v", ap)
	}
	if ac := ps[got["acme"]]; ac.Issuer != "https://id.acme.test" || len(ac.Scopes) != 2 {
		t.Errorf("acme: %+v", ac)
	}
	if err := providersFile(&options{}, filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing providers file was accepted")
	}
}
