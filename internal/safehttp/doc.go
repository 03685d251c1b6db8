// Package safehttp owns fetching documents from URLs that someone outside
// the server chose (client ID metadata documents, and any other URL a
// client hands us), so that such a fetch cannot be turned against the
// server's own network (SSRF) or its resources.
//
// The address policy is enforced where the connection is made, on the IP
// address actually dialled, so a name that resolves to a public address
// when checked and to a private one when used (DNS rebinding) gains
// nothing. Proxies from the environment are ignored: through a proxy the
// dialled address would be the proxy's, not the target's.
//
// The package does not parse what it fetches, cache it, or decide which
// URLs a caller should fetch.
package safehttp
