// Package agents owns agent identity and everything an agent may do: its
// credentials, the permissions granted to it (resource patterns, actions
// and constraints), delegation from users and parent agents, approvals by
// a human in the loop, and budgets.
//
// Permission evaluation here is pure: CompileGrants and GrantSet.Evaluate
// take grants, a request and the current time, and return an Outcome with
// a stable reason code. They keep no counters and read no clocks.
//
// Service is the stateful side: agent lifecycle and API keys over package
// storage, and Decide, which loads an agent's grants (cached briefly in
// memory), evaluates them, enforces the rate limits an Outcome reports
// and writes one durable audit record per decision.
//
// docs/agents.md describes the permission language and its precedence rules.
//
// The package must not import net/http: handlers decode requests, call this
// package and encode its answers. It reaches persistence only through the
// interfaces in package storage.
package agents
