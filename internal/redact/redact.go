// Package redact hides the secrets of what is logged or put in an error message.
package redact

import "net/url"

// URL is rawURL without its password: as written when it has none, its password (of the user
// information, or a password query parameter, as PostgreSQL's URLs accept) replaced by xxxxx
// when it has one, and a placeholder when it does not parse (it might hold a password where a
// parser would not find one).
func URL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unreadable URL)"
	}
	_, inUser := u.User.Password()
	query := u.Query()
	inQuery := query.Has("password")
	if !inUser && !inQuery {
		return rawURL
	}
	if inQuery {
		query.Set("password", "xxxxx")
		u.RawQuery = query.Encode()
	}
	return u.Redacted()
}
