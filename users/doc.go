// Package users owns human identity: sign-up and sign-in with email and
// password, password hashing and policy, sessions (with an in-memory cache in
// front of the store), email verification and password reset, and
// organizations with their memberships and roles (organizations.go).
//
// It speaks no HTTP: callers pass plain inputs and receive records or the
// domain errors in errors.go; the HTTP edge in package kavach maps those
// errors to status codes. Every state change that others may care about is
// written to the storage outbox in the same transaction as the change.
//
// It must not import net/http, fosite, or the storage drivers.
package users
