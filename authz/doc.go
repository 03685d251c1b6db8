// Package authz is the decision point and the OAuth 2.1 authorization
// server: fosite-based authorize, token, introspection and revocation,
// discovery, client registration and client ID metadata documents, and
// the signing keys and JWKS behind access and ID tokens.
//
// It reaches persistence only through storage's interfaces, and keeps
// fosite's types and RFC 6749 errors to itself: storage never sees them.
package authz
