// Package sms owns handing a text message (a one-time sign-in code) to
// whatever delivers it: an HTTP endpoint of the operator's (which relays
// to Twilio, Vonage, an SMS gateway…) or, in development, a folder of
// files.
//
// It does not choose what to send or to whom — codes and their wording
// belong to package users — and it does not retry or queue.
package sms
