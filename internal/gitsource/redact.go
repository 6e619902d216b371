package gitsource

import (
	"net/url"
	"strings"
)

// RedactURL returns u with the password of its user information replaced
// by "[redacted]" (https://user:[redacted]@host/repo), for logs, errors and
// status documents; a URL without a password is returned as it is.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); !ok {
		return u
	}
	p.User = url.UserPassword(p.User.Username(), "[redacted]")
	return strings.Replace(p.String(), "%5Bredacted%5D", "[redacted]", 1)
}

// RedactError returns err with every occurrence of the password of u (raw
// or as it appears in u) replaced, so that an error from a transport that
// quotes the URL can be logged and published. errors.Is and errors.As
// still see err. It returns err itself when u carries no password.
func RedactError(u string, err error) error {
	if err == nil {
		return nil
	}
	p, perr := url.Parse(u)
	if perr != nil || p.User == nil {
		return err
	}
	pw, ok := p.User.Password()
	if !ok || pw == "" {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), u, RedactURL(u))
	msg = strings.ReplaceAll(msg, pw, "[redacted]")
	if esc := url.UserPassword("", pw).String(); esc != ":"+pw {
		msg = strings.ReplaceAll(msg, strings.TrimPrefix(esc, ":"), "[redacted]")
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose text had a password taken out.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
