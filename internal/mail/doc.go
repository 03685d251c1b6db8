// Package mail owns sending Kavach's transactional email (verification
// links, magic links, one-time codes): composing an RFC 5322 message and
// handing it to an SMTP relay, or, in development, to the log and a
// directory of .eml files.
//
// It does not choose what to send or to whom — templates, links and codes
// belong to the domain packages — and it does not retry or queue: a caller
// that needs delivery after a crash puts the message in the outbox first.
package mail
