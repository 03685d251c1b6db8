// Package ratelimit owns the in-memory request limiter that brakes abuse of
// sign-in, sign-up, OTP and magic-link endpoints on a single node.
//
// It counts requests per opaque key (an IP prefix, an email, a client id —
// callers choose) and does not know what the key means, how it was derived,
// or how a refusal is rendered (Retry-After, envelope). Counters live in
// process memory only: when several nodes run, a shared store must replace
// this limiter, because nothing a node keeps in memory may be needed for
// correctness on another node.
package ratelimit
