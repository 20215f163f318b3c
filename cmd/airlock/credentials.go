package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func init() {
	register(command{name: "credentials", summary: "print cloud credentials for a target (aws credential_process, gcp/azure bearer token)", run: credentialsCmd})
}

func credentialsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "Usage: airlock credentials aws|gcp|azure --target NAME [--server URL] [--reason TEXT]")
		return errUsage
	}
	cloud := args[0]
	if cloud != "aws" && cloud != "gcp" && cloud != "azure" {
		return fmt.Errorf("unknown cloud %q (aws, gcp or azure)", cloud)
	}
	fs := newFlagSet("credentials "+cloud, "credentials "+cloud+" --target NAME [--server URL] [--reason TEXT]", stderr)
	server := fs.String("server", envOr("AIRLOCK_SERVER", ""), "Airlock URL (env AIRLOCK_SERVER)")
	target := fs.String("target", envOr("AIRLOCK_TARGET", ""), "target name from the server's config (env AIRLOCK_TARGET)")
	reason := fs.String("reason", envOr("AIRLOCK_REASON", ""), "why you need access, e.g. a ticket (env AIRLOCK_REASON); policies and approvers see it")
	token := fs.String("token", "", "API token instead of the stored login (env AIRLOCK_TOKEN)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *server == "" || *target == "" {
		fs.Usage()
		return errUsage
	}
	body, err := requestCredentials(ctx, *server, *token, cloud, *target, *reason)
	if err != nil {
		return err
	}
	if cloud == "aws" {
		// credential_process output: exactly the JSON the server returned.
		_, err = stdout.Write(body)
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return fmt.Errorf("unexpected answer from %s", *server)
	}
	_, err = fmt.Fprintln(stdout, tok.AccessToken)
	return err
}

// requestCredentials calls POST /api/v1/credentials/{cloud} and returns the JSON body.
func requestCredentials(ctx context.Context, server, token, cloud, target, reason string) ([]byte, error) {
	server = strings.TrimRight(server, "/")
	bearer, err := apiToken(ctx, server, token)
	if err != nil {
		return nil, err
	}
	reqBody, _ := json.Marshal(map[string]string{"target": target, "reason": reason})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/api/v1/credentials/"+cloud, bytes.NewReader(reqBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach Airlock: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", apiErrorMessage(resp.StatusCode, body))
	}
	return body, nil
}

// apiToken picks the bearer for API calls: --token, AIRLOCK_TOKEN, else the stored login.
func apiToken(ctx context.Context, server, flagToken string) (string, error) {
	if flagToken != "" {
		return flagToken, nil
	}
	if t := envOr("AIRLOCK_TOKEN", ""); t != "" {
		return t, nil
	}
	t, err := loadToken(ctx, server)
	if err != nil {
		return "", fmt.Errorf("%w (run: airlock login --server %s)", err, server)
	}
	return t, nil
}

// apiErrorMessage turns the API's {"error","message"} body into one readable line.
func apiErrorMessage(status int, body []byte) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, status)
	}
	return fmt.Sprintf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
}
