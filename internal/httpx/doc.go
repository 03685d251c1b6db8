// Package httpx owns the JSON edge of the /api/auth surface: the response
// envelope ({"success":true,"data":…} or {"success":false,"error":{…}}) and
// strict decoding of JSON request bodies into typed requests.
//
// It turns every client mistake in a request body into a [*DecodeError]
// whose message names the offending field in JSON terms and never leaks Go
// type names. It knows nothing about domain errors, routing, sessions or
// OAuth: mapping domain errors to status codes lives with the handlers, and
// OAuth endpoints speak RFC 6749 errors instead of this envelope.
package httpx
