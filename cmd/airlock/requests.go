package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlockhq/airlock/approval"
)

// The approver's CLI: list held requests, approve or deny one. Each talks to the JSON API
// (/api/v1/requests) with the same token as `airlock credentials`.

func init() {
	register(command{name: "requests", summary: "list held requests you asked for or may approve", run: requestsCmd})
	register(command{name: "approve", summary: "approve a held request: airlock approve ID [--comment TEXT]", run: decideCmd(true)})
	register(command{name: "deny", summary: "deny (or withdraw) a held request: airlock deny ID [--comment TEXT]", run: decideCmd(false)})
}

func requestsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("requests", "requests [--server URL] [--state pending|approved|denied|expired|all] [--json]", stderr)
	server := fs.String("server", envOr("AIRLOCK_SERVER", ""), "Airlock URL (env AIRLOCK_SERVER)")
	state := fs.String("state", "pending", "which requests: pending, approved, denied, expired, or all")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	token := fs.String("token", "", "API token instead of the stored login (env AIRLOCK_TOKEN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	switch *state {
	case "all":
		*state = ""
	case "pending", "approved", "denied", "expired":
	default:
		return fmt.Errorf("--state must be pending, approved, denied, expired or all, not %q", *state)
	}
	path := "/api/v1/requests"
	if *state != "" {
		path += "?state=" + url.QueryEscape(*state)
	}
	body, err := callRequestsAPI(ctx, *server, *token, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err = stdout.Write(body)
		return err
	}
	var list struct {
		Requests []*approval.Request `json:"requests"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("unexpected answer from %s: %w", *server, err)
	}
	if len(list.Requests) == 0 {
		what := "held requests"
		if *state != "" {
			what = *state + " requests"
		}
		_, err = fmt.Fprintf(stdout, "No %s you asked for or may approve.\n", what)
		return err
	}
	return printRequests(stdout, list.Requests, time.Now())
}

// printRequests writes the table of `airlock requests`.
func printRequests(w io.Writer, reqs []*approval.Request, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tREQUESTER\tACTION\tRESOURCE\tTARGET\tRISK\tAPPROVALS\tSTATE")
	for _, r := range reqs {
		resource := r.Action.Resource
		if resource == "" {
			resource = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, age(now.Sub(r.CreatedAt)), r.Requester.Name(),
			r.Action.IAMAction, shorten(resource, 60), r.Target, r.Action.Risk, len(r.Approvals), max(r.Approvers.Count, 1), r.State)
	}
	return tw.Flush()
}

// age is a compact duration: 45s, 7m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d/time.Second), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// shorten keeps the end of long resource names (the distinctive part), marked with "…".
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

func decideCmd(approve bool) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(verb, verb+" ID [--server URL] [--comment TEXT]", stderr)
		server := fs.String("server", envOr("AIRLOCK_SERVER", ""), "Airlock URL (env AIRLOCK_SERVER)")
		comment := fs.String("comment", "", "comment for the requester (and the audit log)")
		token := fs.String("token", "", "API token instead of the stored login (env AIRLOCK_TOKEN)")
		id, err := parseWithID(fs, args)
		if err != nil {
			return err
		}
		if *server == "" || id == "" {
			fs.Usage()
			return errUsage
		}
		body, _ := json.Marshal(map[string]string{"comment": *comment})
		resp, err := callRequestsAPI(ctx, *server, *token, http.MethodPost, "/api/v1/requests/"+url.PathEscape(id)+"/"+verb, body)
		if err != nil {
			return err
		}
		var r approval.Request
		if err := json.Unmarshal(resp, &r); err != nil {
			return fmt.Errorf("unexpected answer from %s: %w", *server, err)
		}
		_, err = fmt.Fprintln(stdout, decisionSummary(&r, approve))
		return err
	}
}

// parseWithID accepts the request ID anywhere among the flags (approve ID --comment X,
// approve --comment X ID, approve --server URL ID --comment X).
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return "", err
	}
	switch len(positional) {
	case 0:
		return "", nil
	case 1:
		return positional[0], nil
	}
	fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(positional[1:], " "))
	return "", errUsage
}

// decisionSummary says in one line what the decision did.
func decisionSummary(r *approval.Request, approve bool) string {
	what := fmt.Sprintf("%s (%s on %s, asked by %s)", r.ID, r.Action.IAMAction, r.Target, r.Requester.Name())
	switch {
	case r.State == approval.StateApproved:
		return "Approved " + what + ": the held call may go through now."
	case approve && r.State == approval.StatePending:
		return fmt.Sprintf("Approval recorded for %s: %d more needed from %s.", what, r.Needed(), strings.Join(r.Approvers.Groups, ", "))
	case r.State == approval.StateDenied:
		return "Denied " + what + ": the held call is refused."
	}
	return fmt.Sprintf("%s is %s.", what, r.State)
}

// callRequestsAPI calls the requests API and returns the body of a 200 answer. Refusals come
// back as errors with the server's explanation.
func callRequestsAPI(ctx context.Context, server, flagToken, method, path string, body []byte) ([]byte, error) {
	server = strings.TrimRight(server, "/")
	bearer, err := apiToken(ctx, server, flagToken)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, server+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach Airlock: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, refusal(resp.StatusCode, b)
	}
	return b, nil
}

// refusal explains an API error, most common cases first.
func refusal(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	msg := apiErrorMessage(status, body)
	switch e.Error {
	case "self_approval":
		return errors.New("refused: you cannot approve your own request; someone else in the approver groups must (" + msg + ")")
	case "not_approver":
		return errors.New("refused: you are not in the approver groups of this request (" + msg + ")")
	case "already_approved":
		return errors.New("refused: you have already approved this request; it needs another approver (" + msg + ")")
	case "already_decided":
		return errors.New("refused: the request is already decided (" + msg + ")")
	case "not_found":
		return errors.New("no such request, or you may not see it (" + msg + ")")
	}
	return errors.New(msg)
}
