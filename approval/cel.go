package approval

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"

	"github.com/airlockhq/airlock/catalog"

	// Conditions such as now.getHours("Europe/Berlin") need the zone database; embedding it
	// keeps a decision from depending on what the container image happens to ship.
	_ "time/tzdata"
)

// celCostLimit bounds one condition's evaluation. Policy conditions are small; anything that
// runs into this is a mistake or an attack, and the call is denied.
const celCostLimit = 100_000

// celEnv declares the variables a `when:` condition sees:
//
//	identity  map: subject, email (strings), groups (list of strings)
//	action    map of strings: cloud, service, operation, name (the IAM action), resource,
//	          source (what a copy reads, else ""), region, account, risk (effective tier)
//	target    string
//	request   map of strings: reason, ticket, source_ip, user_agent
//	now       timestamp
//
// Besides the CEL standard library: the strings extension (lowerAscii, split, ...) and the
// network extension (ip("10.1.2.3"), cidr("10.0.0.0/8").containsIP(request.source_ip)).
type celEnv struct{ env *cel.Env }

func newCELEnv() (*celEnv, error) {
	env, err := cel.NewEnv(
		cel.Variable("identity", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("action", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("target", cel.StringType),
		cel.Variable("request", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("now", cel.TimestampType),
		ext.Strings(),
		ext.Network(),
	)
	if err != nil {
		return nil, fmt.Errorf("policy conditions: %w", err)
	}
	return &celEnv{env: env}, nil
}

// condition is one compiled `when:` expression; the program is built once and reused.
type condition struct {
	src string
	prg cel.Program
}

func (c *celEnv) compile(src string) (*condition, error) {
	ast, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(strings.TrimSpace(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("%q must be a bool expression, it is %s", src, ast.OutputType())
	}
	prg, err := c.env.Program(ast,
		cel.CostLimit(celCostLimit),
		// Folds constants and compiles constant regular expressions once, here.
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", src, err)
	}
	return &condition{src: src, prg: prg}, nil
}

func (c *condition) eval(vars map[string]any) (bool, error) {
	out, _, err := c.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("result is %s, not bool", out.Type())
	}
	return b, nil
}

// celVars builds the activation at most once per decision, and only if a rule gets as far
// as its condition. It does not point at the input (get is given it), so that the input
// Decide works on stays on its stack.
type celVars struct {
	risk catalog.Risk
	vars map[string]any
}

func (v *celVars) get(in *Input) map[string]any {
	if v.vars != nil {
		return v.vars
	}
	groups := in.Identity.Groups
	if groups == nil {
		groups = []string{}
	}
	v.vars = map[string]any{
		"identity": map[string]any{
			"subject": in.Identity.Subject,
			"email":   in.Identity.Email,
			"groups":  groups,
		},
		"action": map[string]string{
			"cloud":     in.Action.Cloud,
			"service":   in.Action.Service,
			"operation": in.Action.Operation,
			"name":      in.Action.IAMAction,
			"resource":  in.Action.Resource,
			"source":    in.Action.Source,
			"region":    in.Action.Region,
			"account":   in.Action.Account,
			"risk":      v.risk.String(),
		},
		"target": in.Target,
		"request": map[string]string{
			"reason":     in.Request.Reason,
			"ticket":     in.Request.Ticket,
			"source_ip":  in.Request.SourceIP,
			"user_agent": in.Request.UserAgent,
		},
		"now": in.Now,
	}
	return v.vars
}
